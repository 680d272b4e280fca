import { messageEnvelopeSql } from "./sql/envelope.js";
import { LockLostError, NotFoundError } from "../api/errors.js";
import { MS, type SchemaDb } from "./schema-db.js";
import type { SqlClient } from "./database.js";
import { insertMessages, type MessageWrite, type WriteAt } from "./sql/insert-messages.js";
import { broadcastPending } from "./sql/pending.js";

export type { MessageOrigin, MessageWrite, WriteAt } from "./sql/insert-messages.js";

/** What a write stored: message ids and the sources (channels, mailboxes) to wake after its commit. */
export interface Written {
  ids: string[];
  sources: string[];
}

/** Messages: the one writer (insert), the readers of published messages, retention. */
export class MessageStore {
  constructor(private readonly c: SchemaDb) {}

  /**
   * Stores `w` (one statement, sql/insert-messages.ts) on `client` — a transactional step's
   * transaction, or the database for a statement of its own.
   * - A direct message to an actor that does not exist writes nothing: NotFoundError.
   * - From an actor, a lost lease writes nothing: LockLostError.
   * - From outside, a repeated idempotency key writes nothing and returns the first message.
   */
  async insert(w: MessageWrite, at: WriteAt, client: SqlClient = this.c.db): Promise<Written> {
    const { text, params } = insertMessages(w, at);
    const { rows } = await client.query<{ fenced: number; ids: string[] | null; sources: string[] | null }>(
      this.c.sql(text),
      params,
    );
    const row = rows[0]!; // an aggregate: always one row
    const written = { ids: row.ids ?? [], sources: row.sources ?? [] };
    if (written.ids.length > 0) return written;
    if (!("source" in w.to)) {
      if (at.by === "actor" && Number(row.fenced) === 0) throw new LockLostError(at.fence.actorId);
      return written; // a group without members
    }
    // One recipient and nothing written: a repeated key, a missing target, or a lost lease.
    const { source, directTo } = w.to;
    if (at.by === "client" && w.idempotencyKey !== undefined) {
      const first = await this.firstWithKey(source, w.idempotencyKey, directTo !== null);
      if (first) return { ids: [first], sources: [source] };
    }
    const missing = new NotFoundError(`no actor with id "${directTo}" to send to`);
    if (at.by === "actor") {
      // The fence also checked the target: which of the two failed?
      if (directTo !== null && !(await this.actorExists(directTo))) throw missing;
      throw new LockLostError(at.fence.actorId);
    }
    if (directTo === null) throw new Error(`publish to "${source}" wrote no message`); // only a direct send can miss
    throw missing;
  }

  /**
   * A keyed group broadcast from outside actors: the messages carry the key as their origin
   * (unique, like an actor's journal position): origin_actor "broadcast <group> <channel>
   * <key>" (spaces: never an actor id), origin_seq the call's count, origin_index the
   * member's rank. Under a lock on the key, a repeat finds them and writes nothing, and
   * returns the first call's count. (A broadcast that reached nobody leaves nothing.)
   */
  async broadcastOnce(
    w: MessageWrite & { to: { group: string; mailboxPrefix: string } },
    channel: string,
    key: string,
  ): Promise<{ count: number; sources: string[] }> {
    const origin = `broadcast ${w.to.group} ${channel} ${key}`;
    return this.c.db.transaction(async (tx) => {
      await tx.query(this.c.sql("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"), [
        `${this.c.schema} ${origin}`,
      ]);
      const first = await tx.query<{ n: number }>(
        this.c.sql("SELECT origin_seq AS n FROM {schema}.messages WHERE origin_actor = $1 LIMIT 1"),
        [origin],
      );
      if (first.rows[0]) return { count: Number(first.rows[0].n), sources: [] };
      const { sources } = await this.insert(w, { by: "once", key: origin }, tx);
      return { count: sources.length, sources };
    });
  }

  // A mailbox key can equal a channel's name ("room" + "lobby" and "room:lobby"): keys are
  // scoped per mailbox and per channel, never shared between the two.
  private async firstWithKey(source: string, key: string, direct: boolean): Promise<string | undefined> {
    const { rows } = await this.c.db.query<{ id: string }>(
      this.c.sql(`SELECT id::text FROM {schema}.messages
                   WHERE channel = $1 AND idempotency_key = $2 AND (direct_to IS NOT NULL) = $3`),
      [source, key, direct],
    );
    return rows[0]?.id;
  }

  private async actorExists(id: string): Promise<boolean> {
    const { rows } = await this.c.db.query(this.c.sql("SELECT 1 FROM {schema}.actors WHERE id = $1"), [id]);
    return rows.length > 0;
  }

  /** Newest message id on a channel (0 when empty): where a new listener starts. */
  async newestId(source: string): Promise<string> {
    const { rows } = await this.c.db.query<{ id: string }>(
      this.c.sql(
        "SELECT COALESCE(max(id), 0)::text AS id FROM {schema}.messages WHERE channel = $1 AND direct_to IS NULL",
      ),
      [source],
    );
    return rows[0]?.id ?? "0";
  }

  /** Published (non-direct) messages after `afterId`, as envelopes, oldest first. */
  async messagesAfter(
    source: string,
    afterId: string,
    limit: number,
  ): Promise<{ id: string; env: Buffer }[]> {
    const { rows } = await this.c.db.query<{ id: string; env: Uint8Array }>(
      this.c
        .sql(`SELECT m.id::text AS id, ${messageEnvelopeSql("m", "$1::text")} AS env FROM {schema}.messages m
                   WHERE ${broadcastPending("m", "$1", "$2")} ORDER BY m.id LIMIT $3`),
      [source, afterId, limit],
    );
    return rows.map((r) => ({ id: r.id, env: Buffer.from(r.env) }));
  }

  /**
   * Retention: removes messages older than `ageMs` that nobody live still needs — claimed
   * ones, direct ones whose target finished, and broadcast ones every current subscriber's
   * cursor has passed. Unclaimed competing messages and messages on channels without a
   * known mode are kept. Returns how many were removed.
   */
  async deleteRead(ageMs: number, batch: number): Promise<number> {
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        DELETE FROM {schema}.messages WHERE id IN (
          SELECT m.id FROM {schema}.messages m
           WHERE m.published_at < now() - ${MS("$1")} AND (
                 m.claimed_by IS NOT NULL
              OR (m.direct_to IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM {schema}.actors a WHERE a.id = m.direct_to AND a.status IN ('running','waiting','compensating')))
              OR (m.direct_to IS NULL
                  AND EXISTS (SELECT 1 FROM {schema}.channels c WHERE c.name = m.channel AND c.mode = 'broadcast')
                  AND NOT EXISTS (SELECT 1 FROM {schema}.subscriptions s
                                   WHERE s.mode = 'broadcast' AND ${broadcastPending("m", "s.source", "s.cursor")})))
           LIMIT $2)`),
      [ageMs, batch],
    );
    return rowCount;
  }
}
