/**
 * Side schemas for the multi-process tests: a fresh schema on the test server holding the
 * tables the fixtures write beside troupe's own (which the workers' migration adds), and a
 * pool on it for the test's reads; close() ends every pool.
 */
import pg from "pg";
import { PG_URL, freshSchema } from "../helpers.js";

/** What the fixtures' transactional steps write: one row per committed effect, naming the worker. */
export const EFFECTS_TABLE = `effects (
  actor_id text NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`;

export class SideSchemas {
  private readonly pools: pg.Pool[] = [];

  /** A fresh schema with `tables` (each "name (columns …)") and a pool of `max` connections. */
  async create(prefix: string, tables: string[], max = 3): Promise<{ schema: string; db: pg.Pool }> {
    if (!PG_URL) throw new Error("side schemas need a real PostgreSQL (TROUPE_TEST_DATABASE_URL)");
    const schema = freshSchema(prefix);
    const db = new pg.Pool({ connectionString: PG_URL, max });
    this.pools.push(db);
    await db.query(`CREATE SCHEMA "${schema}"`);
    for (const table of tables) await db.query(`CREATE TABLE "${schema}".${table}`);
    return { schema, db };
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.end().catch(() => {})));
  }
}
