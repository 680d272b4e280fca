import type { StoreContext } from "./context.js";
import { journalFromRow, type JournalEntry } from "./rows.js";

export class JournalStore {
  constructor(private readonly c: StoreContext) {}

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
