import { MS, type SchemaDb } from "./schema-db.js";

/** The worker registry: each worker's row, kept fresh by its heartbeat, pruned once silent. */
export class WorkerRegistryStore {
  constructor(private readonly c: SchemaDb) {}

  async register(w: { id: string; hostname: string; pid: number; concurrency: number }): Promise<void> {
    await this.c.db.query(
      this.c.sql(`
        INSERT INTO {schema}.workers (id, hostname, pid, concurrency) VALUES ($1, $2, $3, $4)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`),
      [w.id, w.hostname, w.pid, w.concurrency],
    );
  }

  async heartbeat(id: string): Promise<void> {
    await this.c.db.query(this.c.sql("UPDATE {schema}.workers SET heartbeat_at = now() WHERE id = $1"), [id]);
  }

  async remove(id: string): Promise<void> {
    await this.c.db.query(this.c.sql("DELETE FROM {schema}.workers WHERE id = $1"), [id]);
  }

  /** Forget workers silent for longer than `staleMs`. */
  async prune(staleMs: number): Promise<void> {
    await this.c.db.query(
      this.c.sql(`DELETE FROM {schema}.workers WHERE heartbeat_at < now() - ${MS("$1")}`),
      [staleMs],
    );
  }
}
