/**
 * The one SQL surface troupe needs: a query, and a transaction. Implemented by
 * node-postgres (real server) and PGlite (embedded); both speak the same SQL.
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Database extends SqlClient {
  readonly kind: "postgres" | "pglite";
  /** Runs fn inside BEGIN … COMMIT; rolls back if it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** Closes what troupe opened (never a pool the user passed in). */
  close(): Promise<void>;
}
