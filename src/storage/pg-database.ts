import pg from "pg";
import type { Database, QueryResult, SqlClient } from "./database.js";
import { isConnectionError, mapDatabaseError } from "./db-errors.js";
import { preparedName } from "./prepared.js";

/**
 * node-postgres: accepts a URL (pool owned and closed by us) or the user's pool (never closed
 * by us). A connection that fails (server restart, terminated backend, refused) surfaces as
 * DatabaseUnavailableError from every call, never as an unhandled 'error' event.
 */
export class PgDatabase implements Database {
  readonly kind = "postgres" as const;
  private readonly pool: pg.Pool;
  private readonly owned: boolean;

  private readonly prepare: boolean;
  private readonly onError: (err: Error) => void;

  constructor(
    source: string | pg.Pool,
    opts: { poolSize?: number; onError?: (err: Error) => void; preparedStatements?: boolean } = {},
  ) {
    this.prepare = opts.preparedStatements ?? true;
    this.onError = opts.onError ?? (() => {});
    if (typeof source === "string") {
      this.pool = new pg.Pool({ connectionString: source, max: opts.poolSize ?? 10 });
      this.owned = true;
    } else {
      this.pool = source;
      this.owned = false;
    }
    // An idle client erroring (server restart, terminated backend) must not crash the process.
    this.pool.on("error", (err) => this.onError(err));
  }

  /** troupe's own statements go as named prepared statements (parse + plan once per connection). */
  private config(text: string, params?: unknown[]): pg.QueryConfig {
    const name = this.prepare && params ? preparedName(text) : undefined;
    return name ? { name, text, values: params } : { text, values: params };
  }

  async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    try {
      // pool.query listens for the client's 'error' while it holds it, and destroys a broken one.
      const res = await this.pool.query(this.config(text, params));
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    } catch (err) {
      throw mapDatabaseError(err);
    }
  }

  async exec(script: string): Promise<void> {
    try {
      await this.pool.query(script); // no parameters: the simple protocol accepts several statements
    } catch (err) {
      throw mapDatabaseError(err);
    }
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapDatabaseError(err);
    }
    // While we hold the client, the pool does not listen to it: a connection dropped between
    // two statements (pg_terminate_backend, a restart) emits 'error' on it, which without a
    // listener ends the process. Remember it; the next statement fails, and release(err)
    // makes the pool destroy the client instead of handing it out again.
    let broken: Error | undefined;
    const onClientError = (err: Error) => {
      broken ??= err;
      this.onError(err);
    };
    client.on("error", onClientError);
    const run = async <Q>(q: Promise<Q>): Promise<Q> => {
      try {
        return await q;
      } catch (err) {
        if (isConnectionError(err)) broken ??= err as Error;
        throw mapDatabaseError(err);
      }
    };
    try {
      await run(client.query("BEGIN"));
      const tx: SqlClient = {
        query: async <R>(text: string, params?: unknown[]) => {
          const res = await run(client.query(this.config(text, params)));
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        },
        exec: async (script: string) => {
          await run(client.query(script));
        },
      };
      const out = await fn(tx);
      // A COMMIT cut off by a connection failure may or may not have landed: the caller gets
      // DatabaseUnavailableError and must not take it as committed (the engine replays).
      await run(client.query("COMMIT"));
      return out;
    } catch (err) {
      if (!broken) {
        try {
          await client.query("ROLLBACK");
        } catch (rollbackErr) {
          broken = rollbackErr as Error; // the connection is unusable: destroy it
        }
      }
      throw mapDatabaseError(err);
    } finally {
      client.off("error", onClientError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.owned) await this.pool.end();
  }
}
