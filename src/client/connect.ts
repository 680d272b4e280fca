import type { WorkerConfig } from "../engine/worker/worker.js";
import { chooseDatabase, type Logger, type ResolvedOptions, type TroupeOptions } from "../options.js";
import type { Database } from "../storage/database.js";
import { PgDatabase } from "../storage/pg-database.js";
import { PGliteDatabase } from "../storage/pglite-database.js";
import type { Storage } from "../storage/storage.js";
import { LocalWakeups } from "../wakeups/local-wakeups.js";
import { RedisWakeups } from "../wakeups/redis-wakeups.js";
import type { Wakeups } from "../wakeups/wakeups.js";

let memoryScopes = 0;

/**
 * Opens the configured database (a Postgres URL or pool, or embedded PGlite). `scope` names
 * that database for in-process wakeups: Troupes of one process on the same database (and
 * schema) hear each other, others never do.
 */
export async function openDatabase(
  database: TroupeOptions["database"],
  opts: ResolvedOptions,
  log: Logger,
): Promise<{ db: Database; scope: string }> {
  const choice = chooseDatabase(database);
  if (choice.kind === "postgres") {
    const db = new PgDatabase(choice.source, {
      poolSize: opts.poolSize,
      preparedStatements: opts.preparedStatements,
      statementTimeoutMs: opts.statementTimeoutMs,
      idleInTransactionTimeoutMs: opts.idleInTransactionMs,
      onError: (e) => log("warn", "database connection error", { error: e.message }),
    });
    return { db, scope: `${typeof choice.source === "string" ? choice.source : "pool"}|${opts.schema}` };
  }
  const db = await PGliteDatabase.open(choice.dataDir);
  const scope =
    choice.dataDir === undefined ? `memory-${process.pid}-${++memoryScopes}` : `pglite:${choice.dataDir}`;
  return { db, scope };
}

/** The wakeup transport (not started): Redis when configured, else in-process for `scope`. */
export async function openWakeups(
  redis: TroupeOptions["redis"],
  storage: Storage,
  scope: string,
  log: Logger,
): Promise<Wakeups> {
  const onError = (e: Error) =>
    log("warn", "wakeup transport error (polling covers it)", { error: e.message });
  // Redis topic: schema name for people reading MONITOR, installation id so that two
  // databases sharing a Redis (and a schema name) never hear each other.
  return redis
    ? new RedisWakeups(redis, `${storage.schema}:${await storage.installationId()}`, onError)
    : new LocalWakeups(scope);
}

/** The Worker's configuration: this Troupe's resolved options plus its own hooks. */
export function workerConfig(
  id: string,
  opts: ResolvedOptions,
  hooks: Pick<WorkerConfig, "log" | "debugPoint" | "propagation" | "emit">,
): WorkerConfig {
  return {
    id,
    concurrency: opts.concurrency,
    leaseMs: opts.leaseMs,
    pollMs: opts.pollMs,
    maxPayloadBytes: opts.maxPayloadBytes,
    maxParked: opts.maxParked,
    shutdownMs: opts.shutdownMs,
    messageRetentionMs: opts.messageRetentionMs,
    actorRetentionMs: opts.actorRetentionMs,
    ...hooks,
  };
}
