import type pg from "pg";
import type { Redis } from "ioredis";
import type { ActorDefinition } from "./actor.js";
import type { ContextCodec } from "./context-propagation.js";
import { toMillis, type Duration } from "./duration.js";
import { ValidationError } from "./api/errors.js";
import { checkName } from "./names.js";
import { validateSchemaName } from "./storage/sql.js";
import type { OutboxRelayOptions } from "./outbox/relay.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface TroupeOptions {
  /** Actor types this process can run. */
  actors?: ActorDefinition[];
  /**
   * "postgres://…" or a pg.Pool (never closed by troupe) → a real PostgreSQL;
   * "memory://" → embedded PGlite in memory; a directory path → embedded PGlite persisted
   * there; omitted → embedded PGlite at ./.troupe.
   */
  database?: string | pg.Pool;
  /** "redis://…" or an ioredis client (never closed by troupe); omitted → in-process wakeups. */
  redis?: string | Redis;
  /** How long a worker's claim on a running actor lasts unless refreshed (default "30s"). */
  lease?: Duration;
  /** Postgres schema holding troupe's tables (default "troupe"). */
  schema?: string;
  /** Apply migrations at start (default true). With false, start fails if the schema is missing or stale. */
  migrate?: boolean;
  /**
   * Run actors in this process (default true). With false, the Troupe is a client only:
   * it spawns, publishes, sends and queries, while worker processes run the actors.
   */
  worker?: boolean;
  /** Actors this worker runs at once (default 100). Waiting actors do not count. */
  concurrency?: number;
  /** Polling fallback for when a wakeup is lost (default "1s"). */
  pollInterval?: Duration;
  /** Largest encoded input, result, step result or message (default 1 MiB). */
  maxPayloadBytes?: number;
  /** This worker's id (default host-pid-random). */
  workerId?: string;
  /** Connections in the pool troupe opens for a URL (default 10). */
  poolSize?: number;
  /**
   * Send troupe's own statements as named prepared statements, parsed and planned once per
   * connection (default true; about halves a message round trip). Turn off behind a pooler
   * that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
  /**
   * Longest troupe waits for the database to answer one statement on its connections — its
   * own and the user SQL of `tx.query`/`tx.exec` inside `ctx.transaction` (default: the
   * lease, at least "30s"; `false`: no limit). Past it the connection is taken for broken
   * (half-open: gone silent without a reset), destroyed, and the call fails with the
   * retryable DatabaseUnavailableError: an actor's execution is abandoned and replayed
   * after its lease, never journaled with that outcome. Each of troupe's transactions
   * also sets `idle_in_transaction_session_timeout` to max(3 × lease, 2 × this), so the
   * server rolls back a transaction whose client vanished and frees its locks. Must be at
   * least "100ms" and at most 2^31-1 ms (~24.8 days). Only for PostgreSQL (not PGlite).
   */
  statementTimeout?: Duration | false;
  /** Suspended executions kept in memory to resume without replay (default 10,000). */
  maxCachedExecutions?: number;
  /** How long stop() waits for running actors before handing them back (default "10s"). */
  shutdownTimeout?: Duration;
  /** Read channel messages older than this are deleted (default "7d"); unread ones are kept. */
  messageRetention?: Duration;
  /** Finished actors (and their journals) older than this are deleted (default: kept forever). */
  actorRetention?: Duration;
  /**
   * Ambient values (AsyncLocalStorage) captured at spawn/publish/send time, stored with the
   * actor or message, and restored inside the actor and its steps. See asyncLocalContext().
   */
  context?: ContextCodec[];
  /** Receives troupe's log lines (default: warnings and errors to stderr). */
  logger?: Logger;
  /**
   * Relay the transactional outbox (ctx.emit / troupe.emitEvent) from this process to a sink, e.g.
   * `{ sink: httpSink({ url }) }`. Any number of processes may relay; none sends an event twice.
   */
  outbox?: OutboxRelayOptions;
}

/** Troupe's logger unless `logger` is given: warnings and errors to stderr. */
export const defaultLogger: Logger = (level, msg, fields) => {
  if (level === "warn" || level === "error") console.error(`[troupe] ${level}: ${msg}`, fields ?? "");
};

/**
 * The Troupe constructor's checks, in order, and its resolved options: every mistake in the
 * options fails at construction, not later and far from its cause.
 */
export function checkTroupeOptions(options: TroupeOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null)
    throw new ValidationError("Troupe options must be an object");
  validateConstructorOptions(options);
  const resolved = resolveOptions(options);
  if (options.context !== undefined && !Array.isArray(options.context))
    throw new ValidationError("context must be an array of codecs");
  chooseDatabase(options.database);
  return resolved;
}

/** Options whose mistakes would otherwise surface later, far from their cause. */
function validateConstructorOptions(o: TroupeOptions): void {
  if (o.actors !== undefined && !Array.isArray(o.actors))
    throw new ValidationError("actors must be an array of actor() definitions");
  if (o.redis !== undefined) {
    const r = o.redis as unknown;
    const isClient =
      typeof r === "object" && r !== null && typeof (r as { duplicate?: unknown }).duplicate === "function";
    if (!(typeof r === "string" && /^rediss?:\/\//.test(r)) && !isClient) {
      throw new ValidationError("redis must be a redis:// (or rediss://) URL or an ioredis client");
    }
  }
  if (o.logger !== undefined && typeof o.logger !== "function")
    throw new ValidationError("logger must be a function");
  if (o.workerId !== undefined) checkName(o.workerId, "workerId", 200);
  for (const k of ["migrate", "worker", "preparedStatements"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "boolean")
      throw new ValidationError(`${k} must be true or false`);
  }
}

/**
 * `text` with the password (or token) of every URL in it replaced by "***": connection
 * strings come from configuration and may carry credentials, which never go into an error
 * message or a log line.
 */
export function redactCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^/?#@\s]*)@/gi, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return `${scheme}${colon === -1 ? "***" : `${userinfo.slice(0, colon)}:***`}@`;
  });
}

export type DatabaseChoice =
  { kind: "postgres"; source: string | pg.Pool } | { kind: "pglite"; dataDir: string | undefined };

export function chooseDatabase(db: TroupeOptions["database"]): DatabaseChoice {
  if (db === undefined) return { kind: "pglite", dataDir: "./.troupe" };
  if (typeof db === "string") {
    if (db === "memory://") return { kind: "pglite", dataDir: undefined };
    if (/^postgres(ql)?:\/\//.test(db)) return { kind: "postgres", source: db };
    if (db.includes("://"))
      throw new ValidationError(
        `database "${redactCredentials(db)}": use postgres://…, memory:// or a directory path`,
      );
    if (db.trim() === "") throw new ValidationError("database must not be an empty string");
    return { kind: "pglite", dataDir: db };
  }
  if (typeof db === "object" && db !== null && typeof db.connect === "function") {
    return { kind: "postgres", source: db };
  }
  throw new ValidationError("database must be a postgres:// URL, a pg.Pool, memory:// or a directory path");
}

export interface ResolvedOptions {
  leaseMs: number;
  schema: string;
  migrate: boolean;
  concurrency: number;
  pollMs: number;
  maxPayloadBytes: number;
  poolSize: number;
  preparedStatements: boolean;
  /** 0: no client-side limit. */
  statementTimeoutMs: number;
  /** idle_in_transaction_session_timeout for troupe's transactions. */
  idleInTransactionMs: number;
  maxParked: number;
  shutdownMs: number;
  messageRetentionMs: number;
  actorRetentionMs: number | undefined;
}

function positiveInt(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    throw new ValidationError(`${what} must be a positive integer`);
  return v;
}

/** setTimeout's limit: node-postgres's query_timeout is a timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function statementTimeout(v: unknown, leaseMs: number): number {
  if (v === false) return 0;
  if (v === undefined) return Math.min(MAX_TIMER_MS, Math.max(leaseMs, 30_000));
  if (typeof v !== "number" && typeof v !== "string")
    throw new ValidationError('statementTimeout must be a duration (e.g. "30s") or false');
  const ms = toMillis(v, "statementTimeout");
  if (ms < 100) throw new ValidationError("statementTimeout must be at least 100ms (or false for no limit)");
  if (ms > MAX_TIMER_MS)
    throw new ValidationError(`statementTimeout must be at most ${MAX_TIMER_MS}ms (~24.8 days)`);
  return ms;
}

export function resolveOptions(o: TroupeOptions): ResolvedOptions {
  const leaseMs = toMillis(o.lease ?? "30s", "lease");
  if (leaseMs < 100) throw new ValidationError("lease must be at least 100ms");
  const statementTimeoutMs = statementTimeout(o.statementTimeout, leaseMs);
  const pollMs = toMillis(o.pollInterval ?? "1s", "pollInterval");
  if (pollMs < 10) throw new ValidationError("pollInterval must be at least 10ms");
  return {
    leaseMs,
    schema: validateSchemaName(o.schema ?? "troupe"),
    migrate: o.migrate ?? true,
    concurrency: positiveInt(o.concurrency, "concurrency", 100),
    pollMs,
    maxPayloadBytes: positiveInt(o.maxPayloadBytes, "maxPayloadBytes", 1024 * 1024),
    poolSize: positiveInt(o.poolSize, "poolSize", 10),
    preparedStatements: o.preparedStatements ?? true,
    statementTimeoutMs,
    idleInTransactionMs: Math.min(MAX_TIMER_MS, Math.max(3 * leaseMs, 2 * statementTimeoutMs)),
    maxParked: positiveInt(o.maxCachedExecutions, "maxCachedExecutions", 10_000),
    shutdownMs: toMillis(o.shutdownTimeout ?? "10s", "shutdownTimeout"),
    messageRetentionMs: toMillis(o.messageRetention ?? "7d", "messageRetention"),
    actorRetentionMs:
      o.actorRetention === undefined ? undefined : toMillis(o.actorRetention, "actorRetention"),
  };
}
