import { readFile, readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { SchemaMissingError, SchemaTooNewError } from "../api/errors.js";
import type { Database } from "./database.js";
import { LOCK_NS, bindSchema } from "./sql.js";

/** Migrations ship beside dist/ and src/ alike: <package>/migrations/NNNN_name.sql */
const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

let cached: Promise<Migration[]> | undefined;

export function loadMigrations(): Promise<Migration[]> {
  cached ??= (async () => {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
    const migrations = await Promise.all(
      files.map(async (file) => ({
        version: Number(file.slice(0, 4)),
        name: file.slice(5, -4),
        sql: await readFile(MIGRATIONS_DIR + file, "utf8"),
      })),
    );
    // Two files with one number (branches merged side by side) would fail every start on the
    // ledger's primary key, far from the cause: refuse them here, by name.
    const clash = migrations.find((m, i) => i > 0 && migrations[i - 1]!.version === m.version);
    if (clash)
      throw new Error(`two migrations are numbered ${clash.version}: renumber one (${MIGRATIONS_DIR})`);
    return migrations;
  })();
  return cached;
}

/**
 * Applies pending migrations in ONE transaction under an advisory lock (concurrent
 * installers wait for each other), recording each in the ledger. Refuses a database
 * whose schema is newer than this code.
 */
export async function migrate(
  db: Database,
  schema: string,
  opts: { upTo?: number } = {},
): Promise<{ applied: number[]; version: number }> {
  // upTo: stop after that version (upgrade tests build an older schema, then migrate it)
  const migrations = (await loadMigrations()).filter(
    (m) => opts.upTo === undefined || m.version <= opts.upTo,
  );
  const latest = migrations.at(-1)?.version ?? 0;
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [LOCK_NS.migrate, schema]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await tx.query(
      bindSchema(
        schema,
        `CREATE TABLE IF NOT EXISTS {schema}.migrations (
           version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      ),
    );
    const { rows } = await tx.query<{ version: number }>(
      bindSchema(schema, "SELECT version FROM {schema}.migrations"),
    );
    const done = new Set(rows.map((r) => Number(r.version)));
    const current = Math.max(0, ...done);
    if (current > latest) throw new SchemaTooNewError(current, latest);
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.exec(bindSchema(schema, m.sql));
      await tx.query(bindSchema(schema, "INSERT INTO {schema}.migrations (version, name) VALUES ($1, $2)"), [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    return { applied, version: Math.max(current, ...applied) };
  });
}

/** For `migrate: false`: check that the schema exists and is not newer than the code. */
export async function checkSchema(db: Database, schema: string): Promise<number> {
  const migrations = await loadMigrations();
  const latest = migrations.at(-1)?.version ?? 0;
  const { rows } = await db.query<{ exists: boolean }>("SELECT to_regclass($1) IS NOT NULL AS exists", [
    `"${schema}".migrations`,
  ]);
  if (!rows[0]?.exists) {
    throw new SchemaMissingError(
      `schema "${schema}" has no troupe tables; start with migrate: true or run \`troupe migrate\``,
    );
  }
  const res = await db.query<{ version: number }>(
    bindSchema(schema, "SELECT version FROM {schema}.migrations"),
  );
  const applied = new Set(res.rows.map((r) => Number(r.version)));
  const current = Math.max(0, ...applied);
  if (current > latest) throw new SchemaTooNewError(current, latest);
  // Every migration this code knows must be there, not just the newest one.
  const missing = migrations.filter((m) => !applied.has(m.version)).map((m) => m.version);
  if (missing.length > 0) {
    throw new SchemaMissingError(
      `schema "${schema}" lacks migration(s) ${missing.join(", ")}; run migrations`,
    );
  }
  return current;
}
