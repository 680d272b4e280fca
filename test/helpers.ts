import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { Troupe, type TroupeOptions } from "../src/index.js";

export const PG_URL = process.env.TROUPE_TEST_DATABASE_URL;
export const REDIS_URL = process.env.TROUPE_TEST_REDIS_URL;
export const onPostgres = PG_URL !== undefined;
/** For tests that need several processes sharing one database: only a real server can. */
export const needsPostgres = onPostgres ? false : "needs a real PostgreSQL (set TROUPE_TEST_DATABASE_URL)";

/** A fresh schema name per test, so tests never see each other's rows. */
export function freshSchema(prefix = "t"): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/**
 * A Troupe on the suite's backend: embedded in-memory PGlite, or the real Postgres + Redis
 * in a schema of its own. Short lease and poll so tests do not wait on defaults.
 */
export function testTroupe(opts: TroupeOptions = {}): Troupe {
  return new Troupe({
    database: PG_URL ?? "memory://",
    ...(REDIS_URL ? { redis: REDIS_URL } : {}),
    schema: freshSchema(),
    lease: "5s",
    pollInterval: "200ms",
    logger: () => {},
    ...opts,
  });
}

/** Drops a test schema on the real server (PGlite in memory simply goes away). */
export async function dropSchema(schema: string): Promise<void> {
  if (!PG_URL) return;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

/** Polls `check` until it returns a truthy value (tests wait on conditions, never on fixed sleeps). */
export async function eventually<T>(
  check: () => Promise<T> | T,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Troupes that share one database across restarts: the same schema on the real server,
 * the same directory for embedded PGlite. Call `make()` for each "process life".
 */
export async function restartable(
  opts: TroupeOptions = {},
): Promise<{ make: (o?: TroupeOptions) => Troupe; cleanup: () => Promise<void> }> {
  const schema = freshSchema();
  const dir = PG_URL ? undefined : await mkdtemp(join(tmpdir(), "troupe-test-"));
  return {
    make: (o: TroupeOptions = {}) => testTroupe({ database: PG_URL ?? dir, schema, ...opts, ...o }),
    cleanup: async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
      else await dropSchema(schema);
    },
  };
}
