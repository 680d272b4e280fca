/**
 * The side records the workload writes besides troupe's own tables, and how it writes
 * them. Rows written through `tx` (transactional steps and compensations) commit with
 * their journal entry, exactly once; rows written through the side pool (plain steps and
 * plain compensations) are at-least-once and carry a token or idempotency key.
 */
import pg from "pg";

export const SIDE_TABLES = `
  CREATE TABLE IF NOT EXISTS chaos_seen (
    id bigserial PRIMARY KEY, actor_id text NOT NULL, msg_id bigint NOT NULL, channel text NOT NULL,
    src text NOT NULL, n int NOT NULL, gen int NOT NULL, worker text NOT NULL,
    lease_owner text, lease_version bigint, at timestamptz NOT NULL DEFAULT clock_timestamp());
  CREATE TABLE IF NOT EXISTS chaos_saga (
    id bigserial PRIMARY KEY, saga text NOT NULL, step int NOT NULL, what text NOT NULL,
    via text NOT NULL, key text, worker text NOT NULL, lease_owner text, lease_version bigint,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
  CREATE TABLE IF NOT EXISTS chaos_interval (
    token text PRIMARY KEY, actor_id text NOT NULL, step text NOT NULL, worker text NOT NULL,
    started_at timestamptz NOT NULL, ended_at timestamptz);
  CREATE TABLE IF NOT EXISTS chaos_count (
    id bigserial PRIMARY KEY, actor_id text NOT NULL, gen int NOT NULL, worker text NOT NULL,
    lease_owner text, lease_version bigint);
`;

/** troupe's schema in every round's database. */
export const TROUPE_SCHEMA = "troupe";

/** A connection error (server gone, connection killed, refused, reset, timed out): retry it. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  const code = typeof e.code === "string" ? e.code : "";
  if (code === "DATABASE_UNAVAILABLE") return true;
  if (/^(57P0[123]|08...|53300)$/.test(code)) return true;
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH)$/.test(code)) return true;
  const msg = typeof e.message === "string" ? e.message : "";
  if (
    /Connection terminated|connection timeout|terminating connection|not queryable|the database system is (starting|shutting)|Client has encountered a connection error/i.test(
      msg,
    )
  )
    return true;
  return e.cause !== undefined && e.cause !== err && isConnectionError(e.cause);
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A small pool for plain-step side writes that rides out database faults (retries up to 60 s). */
export class SidePool {
  private readonly pool: pg.Pool;
  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 3, connectionTimeoutMillis: 5000 });
    this.pool.on("error", () => {}); // an idle client lost its connection: the next query reconnects
  }

  async query(sql: string, params: unknown[]): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await this.pool.query(sql, params);
        return;
      } catch (err) {
        if (!isConnectionError(err) || Date.now() > deadline) throw err;
        await pause(200);
      }
    }
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}
