/**
 * The fault injector: a seeded schedule of faults over a round's traffic window, run one
 * after the other. Kinds: kill -9 of a worker (then a fresh one), SIGSTOP past the lease
 * then SIGCONT, pg_terminate_backend of troupe's connections, PostgreSQL restart in fast
 * and in immediate mode, Redis stopped and started, a blackholed (half-open) connection
 * through the TCP proxy (reset after a while: `blackhole`; for good: `halfopen`).
 */
import type { PrivatePostgres, PrivateRedis } from "../test/support/servers.js";
import type { Fleet } from "./fleet.js";
import { int, prng } from "./plan.js";
import type { PgProxy } from "../test/support/proxy.js";

/**
 * The campaign's faults (the default set). `halfopen` is a blackhole that is never reset, a
 * half-open connection for the rest of the round (what a silent network failure looks like
 * without TCP keepalive); survived since troupe's statementTimeout and the
 * idle_in_transaction_session_timeout of its transactions (docs/reliability.md, Findings 3).
 */
export const FAULT_KINDS = [
  "kill9",
  "sigstop",
  "terminate",
  "pg-restart-fast",
  "pg-restart-immediate",
  "redis-restart",
  "blackhole",
  "halfopen",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** Every kind --faults accepts (opt-in kinds, outside the default set, would go here too: none at present). */
export const ALL_FAULT_KINDS: readonly FaultKind[] = [...FAULT_KINDS];

export interface Fault {
  kind: FaultKind;
  /** ms after the traffic starts. */
  atMs: number;
  /** in [0, 1): which worker / connection. */
  pick: number;
  /** how long it lasts (stop, outage, hole) or the restart delay (kill9). */
  ms: number;
}

/**
 * The round's faults: `count` of them spread over `windowMs`, durations past the lease
 * where it matters; kinds in the campaign's seeded order of all kinds.
 */
export function faultSchedule(
  seed: number,
  round: number,
  count: number,
  windowMs: number,
  leaseMs: number,
  only: readonly FaultKind[] = FAULT_KINDS,
): Fault[] {
  // The kinds rotate through one campaign-wide shuffle: consecutive rounds cover every kind.
  const order = prng((seed ^ 0xfa017) >>> 0);
  const kinds = [...only];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(order() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const rnd = prng((seed ^ Math.imul(round + 7, 0x85ebca6b)) >>> 0);
  const slot = windowMs / count;
  return Array.from({ length: count }, (_, i) => {
    const kind = kinds[(round * count + i) % kinds.length]!;
    const ms =
      kind === "kill9"
        ? int(rnd, 0, 1500)
        : kind === "sigstop"
          ? leaseMs + int(rnd, 500, 2500)
          : kind === "redis-restart"
            ? int(rnd, 1000, 3000)
            : kind === "blackhole" || kind === "halfopen"
              ? leaseMs + int(rnd, 1000, 4000)
              : 0;
    return { kind, atMs: Math.floor(i * slot + rnd() * slot * 0.5), pick: rnd(), ms };
  });
}

export interface FaultTargets {
  fleet: Fleet;
  pg: PrivatePostgres;
  redis: PrivateRedis;
  proxy: PgProxy;
  /** SQL condition selecting troupe's backends (not the runner's own). */
  troupeBackends: string;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs one fault to its end; returns a short description of what was done. */
export async function inject(f: Fault, t: FaultTargets): Promise<string> {
  switch (f.kind) {
    case "kill9":
      return `kill -9 ${(await t.fleet.kill9(f.pick, f.ms)) ?? "(no live worker)"}, restarted after ${f.ms}ms`;
    case "sigstop":
      return `SIGSTOP ${(await t.fleet.pause(f.pick, f.ms)) ?? "(no live worker)"} for ${f.ms}ms, SIGCONT`;
    case "terminate":
      return `pg_terminate_backend: ${await t.pg.terminateBackends(t.troupeBackends)} connections`;
    case "pg-restart-fast":
      await t.pg.restart("fast");
      return "PostgreSQL restarted (fast)";
    case "pg-restart-immediate":
      await t.pg.restart("immediate");
      return "PostgreSQL restarted (immediate)";
    case "redis-restart":
      await t.redis.stop();
      await pause(f.ms);
      await t.redis.start();
      return `Redis down for ${f.ms}ms`;
    case "blackhole":
      return (await t.proxy.blackhole(f.pick, f.ms))
        ? `blackholed one proxied connection for ${f.ms}ms, then reset`
        : "blackhole: no proxied connection";
    case "halfopen":
      return (await t.proxy.blackhole(f.pick, f.ms, true))
        ? "left one proxied connection half-open for the rest of the round"
        : "halfopen: no proxied connection";
  }
}
