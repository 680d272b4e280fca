import type { ActorStore } from "./actor-store.js";
import type { SchemaDb } from "./schema-db.js";
import { journalFromRow, type Fence, type JournalEntry } from "./rows.js";

export class JournalStore {
  constructor(
    private readonly c: SchemaDb,
    private readonly actors: ActorStore,
  ) {}

  /**
   * Continue-as-new: archives the current journal, starts the next generation with the
   * new input and an empty journal. Subscriptions (with cursors), mailboxes and group
   * memberships are untouched, so nothing published across the boundary is missed.
   * The lease stays with the caller, who starts the new generation at once.
   */
  async recur(
    fence: Fence,
    entries: readonly JournalEntry[],
    leaseMs: number,
    input: Buffer,
    inputJson: string | null,
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await tx.query(
        this.c
          .sql(`INSERT INTO {schema}.journal_archive (actor_id, generation, seq, kind, name, result, error, created_at, txid)
                    SELECT j.actor_id, a.generation, j.seq, j.kind, j.name, j.result, j.error, j.created_at, j.txid
                      FROM {schema}.journal j JOIN {schema}.actors a ON a.id = j.actor_id WHERE j.actor_id = $1`),
        [fence.actorId],
      );
      await tx.query(this.c.sql("DELETE FROM {schema}.journal WHERE actor_id = $1"), [fence.actorId]);
      await tx.query(this.c.sql("DELETE FROM {schema}.compensations WHERE actor_id = $1"), [fence.actorId]);
      await tx.query(
        this.c
          .sql(`UPDATE {schema}.actors SET generation = generation + 1, journal_version = 0, input = $2, input_json = $3::jsonb,
                           updated_at = now() WHERE id = $1`),
        [fence.actorId, input, inputJson],
      );
    });
  }

  /** A page of the current generation's journal, from `fromSeq` on. */
  async page(actorId: string, fromSeq: number, limit: number): Promise<JournalEntry[]> {
    const { rows } = await this.c.db.query(
      this.c.sql(`
        SELECT seq, kind, name, result, error, created_at FROM {schema}.journal
         WHERE actor_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3`),
      [actorId, fromSeq, limit],
    );
    return rows.map(journalFromRow);
  }

  async entry(actorId: string, seq: number): Promise<JournalEntry | null> {
    const { rows } = await this.c.db.query(
      this.c.sql(
        "SELECT seq, kind, name, result, error, created_at FROM {schema}.journal WHERE actor_id = $1 AND seq = $2",
      ),
      [actorId, seq],
    );
    return rows[0] ? journalFromRow(rows[0]) : null;
  }

  /**
   * History across generations (archived first), paged by (generation, seq) so it never
   * loads a whole journal into memory.
   */
  async historyPage(
    actorId: string,
    after: { generation: number; seq: number },
    limit: number,
  ): Promise<JournalEntry[]> {
    const { rows } = await this.c.db.query(
      this.c.sql(`
        SELECT * FROM (
          SELECT generation, seq, kind, name, result, error, created_at FROM {schema}.journal_archive WHERE actor_id = $1
          UNION ALL
          SELECT a.generation, j.seq, j.kind, j.name, j.result, j.error, j.created_at
            FROM {schema}.journal j JOIN {schema}.actors a ON a.id = j.actor_id WHERE j.actor_id = $1
        ) h
        WHERE (generation, seq) > ($2, $3)
        ORDER BY generation, seq LIMIT $4`),
      [actorId, after.generation, after.seq, limit],
    );
    return rows.map(journalFromRow);
  }
}
