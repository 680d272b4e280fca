import pg from "pg";
import type { Database, QueryResult, SqlClient } from "./database.js";
import { DatabaseUnavailableError } from "../api/errors.js";
import { isConnectionError, mapDatabaseError } from "./db-errors.js";
import { preparedName } from "./prepared.js";

/** node-postgres's message when a query's `query_timeout` passes without a reply. */
const READ_TIMEOUT = "Query read timeout";

export interface PgDatabaseOptions {
  poolSize?: number;
  onError?: (err: Error) => void;
  preparedStatements?: boolean;
  /**
   * Longest wait for the reply to one statement (ms; 0: no limit). After it the connection
   * is taken for broken (half-open: a peer or middlebox gone silent without a reset): the
   * client is destroyed and the call fails with DatabaseUnavailableError.
   */
  statementTimeoutMs?: number;
  /**
   * idle_in_transaction_session_timeout set (SET LOCAL) in each of troupe's transactions
   * (ms; 0: leave the server's setting), so that the server ends a session whose client
   * went away without a reset, and frees its locks.
   */
  idleInTransactionTimeoutMs?: number;
}

/**
 * node-postgres: accepts a URL (pool owned and closed by us) or the user's pool (never closed
 * by us). A connection that fails (server restart, terminated backend, refused) surfaces as
 * DatabaseUnavailableError from every call, never as an unhandled 'error' event.
 *
 * Half-open connections (no reply, no reset): every statement has a client-side limit
 * (statementTimeoutMs, node-postgres `query_timeout` per query, so it holds for a user's
 * pool too); past it the client is released with the error, and the pool destroys it.
 * On the server, each transaction sets idle_in_transaction_session_timeout (SET LOCAL, in
 * the same round trip as BEGIN), so a transaction whose client vanished is rolled back and
 * its row and advisory locks freed. Pools troupe opens also enable TCP keepalives.
 */
export class PgDatabase implements Database {
  readonly kind = "postgres" as const;
  private readonly pool: pg.Pool;
  private readonly owned: boolean;

  private readonly prepare: boolean;
  private readonly onError: (err: Error) => void;
  private readonly timeoutMs: number;
  private readonly begin: string;

  constructor(source: string | pg.Pool, opts: PgDatabaseOptions = {}) {
    this.prepare = opts.preparedStatements ?? true;
    this.onError = opts.onError ?? (() => {});
    this.timeoutMs = opts.statementTimeoutMs ?? 0;
    const idleMs = Math.round(opts.idleInTransactionTimeoutMs ?? 0);
    // One simple-protocol message, one round trip: BEGIN, then the limit for this transaction only.
    this.begin = idleMs > 0 ? `BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${idleMs}` : "BEGIN";
    if (typeof source === "string") {
      this.pool = new pg.Pool({ connectionString: source, max: opts.poolSize ?? 10, keepAlive: true });
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
    const cfg: pg.QueryConfig = name ? { name, text, values: params } : { text, values: params };
    if (this.timeoutMs > 0) (cfg as { query_timeout?: number }).query_timeout = this.timeoutMs;
    return cfg;
  }

  /** A statement's error as the caller sees it; a read timeout says which limit it hit. */
  private failure(err: unknown): unknown {
    if (err instanceof Error && err.message === READ_TIMEOUT)
      return new DatabaseUnavailableError(
        `the database did not answer a statement within ${this.timeoutMs}ms (statementTimeout); ` +
          "the connection is taken for broken and closed; retry later",
        { cause: err },
      );
    return mapDatabaseError(err);
  }

  async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    try {
      // pool.query listens for the client's 'error' while it holds it, and destroys a broken one.
      // On any error (a read timeout too) it releases the client with it: the pool destroys it.
      const res = await this.pool.query(this.config(text, params));
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    } catch (err) {
      throw this.failure(err);
    }
  }

  async exec(script: string): Promise<void> {
    try {
      await this.pool.query(this.config(script)); // no parameters: the simple protocol accepts several statements
    } catch (err) {
      throw this.failure(err);
    }
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    // While we hold the client, the pool does not listen to it: a connection dropped between
    // two statements (pg_terminate_backend, a restart) emits 'error' on it, which without a
    // listener ends the process. Remember it; the next statement fails, and release(err)
    // makes the pool destroy the client instead of handing it out again.
    let broken: Error | undefined;
    const onClientError = (err: Error) => {
      broken ??= err;
      this.onError(err);
    };
    let client: pg.PoolClient;
    try {
      client = await new Promise<pg.PoolClient>((resolve, reject) => {
        // The callback runs synchronously when the pool hands the client over; `await
        // pool.connect()` would attach the listener a microtask later, after the parser may
        // already have emitted an error that arrived in the same chunk (handed over while
        // the previous user's ReadyForQuery was being parsed).
        this.pool.connect((err, c) => {
          if (err || !c) return reject(err ?? new Error("the pool returned no client"));
          c.on("error", onClientError);
          resolve(c);
        });
      });
    } catch (err) {
      throw mapDatabaseError(err);
    }
    const run = async <Q>(q: Promise<Q>): Promise<Q> => {
      try {
        return await q;
      } catch (err) {
        // A read timeout leaves the statement in flight: the client is unusable, destroy it.
        if (isConnectionError(err)) broken ??= err as Error;
        throw this.failure(err);
      }
    };
    try {
      await run(client.query(this.config(this.begin)));
      const tx: SqlClient = {
        query: async <R>(text: string, params?: unknown[]) => {
          const res = await run(client.query(this.config(text, params)));
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        },
        exec: async (script: string) => {
          await run(client.query(this.config(script)));
        },
      };
      const out = await fn(tx);
      // fn may have caught a failed statement's error: the connection is gone, so is the transaction.
      if (broken) throw this.failure(broken);
      // A COMMIT cut off by a connection failure may or may not have landed: the caller gets
      // DatabaseUnavailableError and must not take it as committed (the engine replays).
      await run(client.query(this.config("COMMIT")));
      return out;
    } catch (err) {
      if (!broken) {
        try {
          await client.query(this.config("ROLLBACK"));
        } catch (rollbackErr) {
          broken = rollbackErr as Error; // the connection is unusable: destroy it
        }
      }
      throw this.failure(err);
    } finally {
      client.off("error", onClientError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.owned) await this.pool.end();
  }
}
