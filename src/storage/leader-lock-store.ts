import { MS, type SchemaDb } from "./schema-db.js";

/** The system lock the leader holds (src/engine/leader.ts takes it; the read model names its holder). */
export const LEADER_LOCK = "leader";

/** System locks with a lease: the leader lock (LEADER_LOCK), taken and renewed each leader tick. */
export class LeaderLockStore {
  constructor(private readonly c: SchemaDb) {}

  /** Takes or renews `name` for `owner` unless another owner holds an unexpired lease. */
  async tryAcquire(name: string, owner: string, leaseMs: number): Promise<boolean> {
    const { rows } = await this.c.db.query(
      this.c.sql(`
        INSERT INTO {schema}.system_locks AS l (name, owner, expires_at) VALUES ($1, $2, now() + ${MS("$3")})
        ON CONFLICT (name) DO UPDATE
           SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
               acquired_at = CASE WHEN l.owner = EXCLUDED.owner THEN l.acquired_at ELSE now() END
         WHERE l.owner = EXCLUDED.owner OR l.expires_at < now()
        RETURNING owner`),
      [name, owner, leaseMs],
    );
    return rows.length > 0;
  }

  async release(name: string, owner: string): Promise<void> {
    await this.c.db.query(this.c.sql("DELETE FROM {schema}.system_locks WHERE name = $1 AND owner = $2"), [
      name,
      owner,
    ]);
  }
}
