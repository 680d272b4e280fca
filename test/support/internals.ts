/**
 * How tests reach troupe's internals: one module, built on src/internal/ (never the public
 * API, never Troupe's `_storage`). Raw reads for assertions, raw writes for seeding rows or
 * forcing a state, and the storage layer for the few tests that drive a store directly.
 * SQL text uses `{schema}.table`, bound to the Troupe's schema.
 */
import type { Troupe } from "../../src/index.js";
import { rawSqlOf, storageOf } from "../../src/internal/storage-access.js";
import type { Database, SqlClient } from "../../src/storage/database.js";

export { storageOf };

/** The schema a started Troupe works in. */
export function schemaOf(t: Troupe): string {
  return rawSqlOf(t).schema;
}

/** The Troupe's database handle (to run a transaction, or to wrap its methods and count calls). */
export function databaseOf(t: Troupe): Database {
  return rawSqlOf(t).db;
}

/** `text` with `{schema}` bound to the Troupe's schema (for statements run on a transaction). */
export function boundSql(t: Troupe, text: string): string {
  return rawSqlOf(t).bind(text);
}

/** The rows a statement returns. */
export async function sqlRows<R = Record<string, any>>(
  t: Troupe,
  text: string,
  params?: unknown[],
): Promise<R[]> {
  const raw = rawSqlOf(t);
  return (await raw.db.query<R>(raw.bind(text), params)).rows;
}

/** The `n` of the first row (write the statement as `SELECT count(*)::int AS n …`). */
export async function sqlCount(t: Troupe, text: string, params?: unknown[]): Promise<number> {
  const rows = await sqlRows<{ n: number | string }>(t, text, params);
  return Number(rows[0]!.n);
}

/** Runs a statement (seeding rows, forcing a state); returns how many rows it changed. */
export async function sqlRun(t: Troupe, text: string, params?: unknown[]): Promise<number> {
  const raw = rawSqlOf(t);
  return (await raw.db.query(raw.bind(text), params)).rowCount;
}

/** Runs `fn` in one transaction; bind statement text with boundSql(). */
export function sqlTransaction<T>(t: Troupe, fn: (tx: SqlClient) => Promise<T>): Promise<T> {
  return rawSqlOf(t).db.transaction(fn);
}
