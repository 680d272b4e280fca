/**
 * The door from a Troupe to its storage for troupe's own tests and tools (through
 * test/support/internals.ts), not part of the package: index.ts does not export it, and the
 * table below is private to this module, so only code that imports this file by path can
 * reach a Troupe's storage.
 */
import type { Database } from "../storage/database.js";
import { schemaDbOf, type Storage } from "../storage/storage.js";
import type { Troupe } from "../troupe.js";

const storages = new WeakMap<object, () => Storage>();

/** Called once by each Troupe: `get` returns its started storage or throws NotStartedError. */
export function bindStorage(owner: Troupe, get: () => Storage): void {
  storages.set(owner, get);
}

/** The started storage of `troupe` (NotStartedError before start() and after stop()). */
export function storageOf(troupe: Troupe): Storage {
  const get = storages.get(troupe);
  if (!get) throw new TypeError("storageOf() needs a Troupe");
  return get();
}

/**
 * Raw SQL on a Troupe's database, for tests that seed rows or assert on tables: the database
 * handle and `{schema}` binding. Storage code never needs this; nothing else should.
 */
export function rawSqlOf(troupe: Troupe): {
  db: Database;
  schema: string;
  bind(text: string): string;
} {
  const raw = schemaDbOf(storageOf(troupe));
  return { db: raw.db, schema: raw.schema, bind: (text) => raw.sql(text) };
}
