import pg from "pg";
import type { Database, QueryResult, SqlClient } from "./database.js";
import { preparedName } from "./prepared.js";

/** node-postgres: accepts a URL (pool owned and closed by us) or the user's pool (never closed by us). */
export class PgDatabase implements Database {
  readonly kind = "postgres" as const;
  private readonly pool: pg.Pool;
  private readonly owned: boolean;

  private readonly prepare: boolean;

  constructor(
    source: string | pg.Pool,
    opts: { poolSize?: number; onError?: (err: Error) => void; preparedStatements?: boolean } = {},
  ) {
    this.prepare = opts.preparedStatements ?? true;
    if (typeof source === "string") {
      this.pool = new pg.Pool({ connectionString: source, max: opts.poolSize ?? 10 });
      this.owned = true;
    } else {
      this.pool = source;
      this.owned = false;
    }
    // An idle client erroring (server restart, terminated backend) must not crash the process.
    this.pool.on("error", (err) => opts.onError?.(err));
  }

  /** troupe's own statements go as named prepared statements (parse + plan once per connection). */
  private config(text: string, params?: unknown[]): pg.QueryConfig {
    const name = this.prepare && params ? preparedName(text) : undefined;
    return name ? { name, text, values: params } : { text, values: params };
  }

  async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    const res = await this.pool.query(this.config(text, params));
    return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
  }

  async exec(script: string): Promise<void> {
    await this.pool.query(script); // no parameters: the simple protocol accepts several statements
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const tx: SqlClient = {
        query: async <R>(text: string, params?: unknown[]) => {
          const res = await client.query(this.config(text, params));
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        },
        exec: async (script: string) => {
          await client.query(script);
        },
      };
      const out = await fn(tx);
      await client.query("COMMIT");
      return out;
    } catch (err) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackErr) {
        broken = rollbackErr as Error; // the connection is unusable: destroy it
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.owned) await this.pool.end();
  }
}
