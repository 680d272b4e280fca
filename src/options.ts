import type pg from "pg";
import type { Redis } from "ioredis";
import type { ActorDefinition } from "./actor.js";
import type { ContextCodec } from "./context-propagation.js";
import { toMillis, type Duration } from "./duration.js";
import { ValidationError } from "./errors.js";
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
   * Test hook: called at named points inside the engine (e.g. "step:after-fn") so fault
   * tests can hit an exact window. Never needed in production.
   */
  debugPoint?: (name: string, info: Record<string, unknown>) => void | Promise<void>;
  /**
   * Relay the transactional outbox (ctx.emit / troupe.emitEvent) from this process to a sink, e.g.
   * `{ sink: httpSink({ url }) }`. Any number of processes may relay; none sends an event twice.
   */
  outbox?: OutboxRelayOptions;
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

export function resolveOptions(o: TroupeOptions): ResolvedOptions {
  const leaseMs = toMillis(o.lease ?? "30s", "lease");
  if (leaseMs < 100) throw new ValidationError("lease must be at least 100ms");
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
    maxParked: positiveInt(o.maxCachedExecutions, "maxCachedExecutions", 10_000),
    shutdownMs: toMillis(o.shutdownTimeout ?? "10s", "shutdownTimeout"),
    messageRetentionMs: toMillis(o.messageRetention ?? "7d", "messageRetention"),
    actorRetentionMs:
      o.actorRetention === undefined ? undefined : toMillis(o.actorRetention, "actorRetention"),
  };
}
