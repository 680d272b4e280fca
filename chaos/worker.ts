/**
 * A chaos worker process: a troupe worker running the workload actors (chaos/actors.ts).
 * Configured by environment: CHAOS_DB (through the TCP proxy), CHAOS_SIDE_DB (plain-step
 * side writes), CHAOS_REDIS, CHAOS_WORKER, CHAOS_LEASE. Prints JSON lines: ready, log
 * (troupe's warnings and errors, the first few of each), stopped.
 *
 * Deliberately no uncaughtException handler: a worker that dies on its own is what the
 * campaign must see (the runner records every exit it did not cause).
 */
import { Troupe } from "../src/index.js";
import { ALL_ACTORS, setWorkerEnv } from "./actors.js";
import { SidePool, TROUPE_SCHEMA } from "./side.js";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`chaos worker: ${name} is required`);
  return v;
};
const WORKER = env("CHAOS_WORKER");
const emit = (event: string, data: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ event, worker: WORKER, at: Date.now(), ...data }) + "\n");

const side = new SidePool(env("CHAOS_SIDE_DB"));
setWorkerEnv(WORKER, side);

const logCounts = new Map<string, number>();
const troupe = new Troupe({
  actors: ALL_ACTORS,
  database: env("CHAOS_DB"),
  redis: env("CHAOS_REDIS"),
  schema: TROUPE_SCHEMA,
  workerId: WORKER,
  lease: env("CHAOS_LEASE"),
  pollInterval: "250ms",
  messageRetention: "5s",
  shutdownTimeout: "2s",
  logger: (level, msg, fields) => {
    if (level !== "warn" && level !== "error") return;
    const key = `${level}: ${msg}`;
    const n = (logCounts.get(key) ?? 0) + 1;
    logCounts.set(key, n);
    if (n <= 2) emit("log", { level, msg, fields: JSON.stringify(fields ?? {}).slice(0, 300), n });
  },
});

process.on("SIGTERM", () => {
  void troupe.stop().finally(() => {
    emit("stopped", { logCounts: Object.fromEntries(logCounts) });
    process.exit(0);
  });
});

await troupe.start();
emit("ready", { pid: process.pid });
