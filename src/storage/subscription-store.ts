import { NotSubscribedError } from "../api/errors.js";
import type { ChannelMode } from "../api/types.js";
import type { ActorStore, WaitSpec } from "./actor-store.js";
import type { ChannelStore } from "./channel-store.js";
import type { SchemaDb } from "./schema-db.js";
import type { SqlClient } from "./database.js";
import type { Fence, JournalEntry } from "./rows.js";
import { LOCK_SOURCES_EXCLUSIVE } from "./sql/source-locks.js";
import { CLAIM_NEXT, NEXT_BROADCAST } from "./sql/take-pending.js";

interface Subscription {
  channel: string;
  mode: ChannelMode;
  source: string;
  cursor: string;
}

/**
 * An actor's subscriptions and its receive: reading a source (moving a cursor, claiming a
 * message) or registering a wait on it, always under the source's exclusive lock and after
 * the actor's own row (the fence) — see the lock order in sql.ts.
 */
export class SubscriptionStore {
  constructor(
    private readonly c: SchemaDb,
    private readonly actors: ActorStore,
    private readonly channels: ChannelStore,
  ) {}

  /**
   * Subscribes atomically: the channel's mode is fixed by its first subscriber; a broadcast
   * cursor starts at the newest message (under the exclusive source lock, so no in-flight
   * publish can slip in below it). Re-subscribing keeps the existing cursor.
   */
  async subscribe(
    fence: Fence,
    entries: readonly JournalEntry[],
    leaseMs: number,
    sub: { channel: string; mode: ChannelMode; source: string },
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await this.channels.fixMode(tx, sub.channel, sub.mode);
      await tx.query(this.c.sql(LOCK_SOURCES_EXCLUSIVE), [[sub.source]]);
      await tx.query(
        this.c.sql(`
          INSERT INTO {schema}.subscriptions (actor_id, channel, mode, source, cursor)
          SELECT $1, $2, $3, $4, CASE WHEN $3 = 'broadcast'
                   THEN COALESCE((SELECT max(id) FROM {schema}.messages WHERE channel = $4 AND direct_to IS NULL), 0) ELSE 0 END
          ON CONFLICT (actor_id, channel) DO NOTHING`),
        [fence.actorId, sub.channel, sub.mode, sub.source],
      );
    });
  }

  async unsubscribe(
    fence: Fence,
    entries: readonly JournalEntry[],
    leaseMs: number,
    channel: string,
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await tx.query(this.c.sql("DELETE FROM {schema}.subscriptions WHERE actor_id = $1 AND channel = $2"), [
        fence.actorId,
        channel,
      ]);
    });
  }

  /**
   * receive / receiveAny: under the exclusive locks of the sources, take the first pending
   * message of the given channels (in the order given) and journal it; if there is none,
   * register the wait in the same transaction — so a publish either is seen now or sees the wait.
   */
  async receiveOrWait(
    fence: Fence,
    buffered: readonly JournalEntry[],
    leaseMs: number,
    wait: WaitSpec,
    channels: readonly string[],
    beforeWait?: () => Promise<void>,
  ): Promise<{ entry: JournalEntry } | { parkedAt: number }> {
    return this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, [], leaseMs); // locks the actor row first, like every writer
      const { rows: subs } = await tx.query<Subscription>(
        this.c.sql(
          "SELECT channel, mode, source, cursor FROM {schema}.subscriptions WHERE actor_id = $1 AND channel = ANY($2)",
        ),
        [fence.actorId, channels],
      );
      for (const ch of channels) if (!subs.some((s) => s.channel === ch)) throw new NotSubscribedError(ch);
      await tx.query(this.c.sql(LOCK_SOURCES_EXCLUSIVE), [subs.map((s) => s.source)]);
      for (const ch of channels) {
        const s = subs.find((x) => x.channel === ch)!;
        const result = await this.takePending(tx, fence.actorId, s);
        if (result) {
          const entry: JournalEntry = {
            seq: wait.seq,
            kind: wait.kind,
            name: wait.name,
            result,
            error: null,
          };
          await this.actors.fenceAndInsert(tx, fence, [...buffered, entry], leaseMs);
          return { entry };
        }
      }
      // The window between "nothing pending" and "wait registered", for tests to publish into.
      if (beforeWait) await beforeWait();
      const parkedAt = await this.actors.parkInTx(tx, fence, wait, buffered);
      await tx.query(
        this.c.sql(
          "UPDATE {schema}.subscriptions SET wait_seq = $3 WHERE actor_id = $1 AND channel = ANY($2)",
        ),
        [fence.actorId, channels, wait.seq],
      );
      return { parkedAt };
    });
  }

  /** Takes the next message of one subscription (advancing the cursor or claiming it) and returns it as an envelope. */
  private async takePending(tx: SqlClient, actorId: string, s: Subscription): Promise<Buffer | null> {
    if (s.mode === "broadcast") {
      const { rows } = await tx.query<{ id: string; env: Uint8Array }>(this.c.sql(NEXT_BROADCAST), [
        s.source,
        s.cursor,
        s.channel,
      ]);
      const row = rows[0];
      if (!row) return null;
      await tx.query(
        this.c.sql("UPDATE {schema}.subscriptions SET cursor = $3 WHERE actor_id = $1 AND channel = $2"),
        [actorId, s.channel, row.id],
      );
      return Buffer.from(row.env);
    }
    const { rows } = await tx.query<{ env: Uint8Array }>(this.c.sql(CLAIM_NEXT), [
      s.source,
      actorId,
      s.channel,
      s.mode,
    ]);
    return rows[0] ? Buffer.from(rows[0].env) : null;
  }
}
