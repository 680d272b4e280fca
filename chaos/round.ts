/**
 * One chaos round: a fresh database on the campaign's PostgreSQL, 3 workers and the
 * client, the seeded faults while the traffic flows, a drain, then the invariant checker.
 */
import pg from "pg";
import type { PrivatePostgres, PrivateRedis } from "../test/support/servers.js";
import { check } from "./checker.js";
import { faultSchedule, inject, type FaultKind } from "./faults.js";
import { Fleet, type Crash } from "./fleet.js";
import { expectedDeliveries, roundPlan, trafficWindowMs } from "./plan.js";
import type { PgProxy } from "../test/support/proxy.js";
import { SIDE_TABLES, isConnectionError } from "./side.js";

export interface RoundOptions {
  seed: number;
  round: number;
  short: boolean;
  keep: boolean;
  /** Only these fault kinds (default all). */
  faultKinds?: readonly FaultKind[];
  pg: PrivatePostgres;
  redis: PrivateRedis;
  proxy: PgProxy;
  log: (line: string) => void;
}

export interface RoundResult {
  round: number;
  seed: number;
  database: string;
  faults: Partial<Record<FaultKind, number>>;
  faultLog: string[];
  messages: number;
  deliveries: number;
  violations: string[];
  violationCount: number;
  crashes: Crash[];
  /** Retries the client made, and troupe warnings/errors the workers logged. */
  clientRetries: number;
  /** The client's retries by error (code or first words). */
  retryCauses: Record<string, number>;
  seconds: number;
  /** Where the time went: "workers 5.1s, subscribe 2.0s, faults 14.2s, drain 3.1s, check 0.4s". */
  phases: string;
}

const RUNNER = "chaos-runner";
const LEASE_MS = 2000;
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A query on a fresh connection, retried while the server is restarting (a fault may be under way). */
export function runnerQuery(url: string) {
  return async <R extends pg.QueryResultRow = Record<string, any>>(
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const c = new pg.Client({ connectionString: url, application_name: RUNNER });
      c.on("error", () => {});
      try {
        await c.connect();
        return (await c.query<R>(sql, params)).rows;
      } catch (err) {
        if (!isConnectionError(err) || Date.now() > deadline) throw err;
        await pause(250);
      } finally {
        await c.end().catch(() => {});
      }
    }
  };
}

function retryCauses(errors: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of errors) {
    const key = /\[([^\]]+)\]/.exec(e)?.[1] ?? e.replace(/^\w+: /, "").slice(0, 40);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export async function runRound(o: RoundOptions): Promise<RoundResult> {
  const t0 = Date.now();
  const phases: string[] = [];
  let tp = t0;
  const phase = (name: string) => {
    phases.push(`${name} ${((Date.now() - tp) / 1000).toFixed(1)}s`);
    tp = Date.now();
  };
  const plan = roundPlan(o.seed, o.round, { short: o.short });
  const database = `chaos_${o.seed}_${o.round}`;
  const base = (port: number, db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const admin = runnerQuery(base(o.pg.port, "postgres"));
  await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${database}`);
  const q = runnerQuery(base(o.pg.port, database));
  await q(SIDE_TABLES);

  const fleet = new Fleet({
    workerDb: base(o.proxy.port, database),
    sideDb: `${base(o.pg.port, database)}?application_name=chaos-side`,
    clientDb: base(o.pg.port, database),
    redis: o.redis.url,
    lease: `${LEASE_MS}ms`,
    seed: o.seed,
    round: o.round,
    short: o.short,
  });
  const faults: Partial<Record<FaultKind, number>> = {};
  const faultLog: string[] = [];
  const violations: string[] = [];
  let violationCount = 0;
  const violation = (text: string) => {
    violationCount++;
    violations.push(text);
  };
  try {
    for (const id of ["w1", "w2", "w3"]) fleet.startWorker(id);
    await Promise.all(fleet.live().map((w) => w.waitFor((l) => l.event === "ready", "worker ready", 90_000)));
    phase("workers");
    const client = fleet.startClient();
    await client.waitFor((l) => l.event === "consumers-ready", "consumers subscribed", 90_000);
    phase("subscribe");

    // ---- faults while the traffic flows ---------------------------------------------
    const windowMs = trafficWindowMs(o.short);
    const schedule = faultSchedule(o.seed, o.round, o.short ? 3 : 5, windowMs, LEASE_MS, o.faultKinds);
    const tf = Date.now();
    for (const f of schedule) {
      const wait = tf + f.atMs - Date.now();
      if (wait > 0) await pause(wait);
      const at = ((Date.now() - tf) / 1000).toFixed(1);
      const what = await inject(f, {
        fleet,
        pg: o.pg,
        redis: o.redis,
        proxy: o.proxy,
        troupeBackends: `application_name <> '${RUNNER}'`,
      });
      faults[f.kind] = (faults[f.kind] ?? 0) + 1;
      faultLog.push(`+${at}s ${what}`);
    }

    // ---- drain: the client done, every delivery recorded, every actor ended or waiting
    phase("faults");
    const expected = expectedDeliveries(plan);
    const finite = plan.publishers.length + plan.sagas.length + plan.churners.length + plan.counters.length;
    const drainMs = o.short ? 45_000 : 60_000;
    const deadline = Date.now() + drainMs;
    let last = "";
    for (;;) {
      const [row] = await q<{ seen: number; ended: number }>(
        `SELECT (SELECT count(*)::int FROM chaos_seen) AS seen,
                (SELECT count(*)::int FROM troupe.actors WHERE actor <> 'chaos-consumer'
                   AND status IN ('completed', 'failed', 'cancelled')) AS ended`,
      );
      last = `${row?.seen}/${expected} deliveries, ${row?.ended}/${finite} actors ended, client ${fleet.clientDone ? "done" : "not done"}`;
      if (fleet.clientDone && (row?.seen ?? 0) >= expected && (row?.ended ?? 0) >= finite) break;
      if (Date.now() > deadline) {
        violation(`drain: not settled after ${drainMs / 1000}s: ${last}`);
        break;
      }
      await pause(500);
    }
    phase("drain");
    await pause(1500); // a late duplicate would land now
  } catch (err) {
    violation(`round aborted: ${(err as Error).message.slice(0, 1500)}`);
  }
  await fleet.close();
  o.proxy.resetHoles();

  for (const { process, line } of fleet.lines("error"))
    violation(`client call failed (${process}): ${String(line.what)}: ${String(line.error)}`);
  let messages = 0;
  let deliveries = 0;
  try {
    const res = await check(plan, q);
    violations.push(...res.violations);
    violationCount += res.total;
    messages = res.messages;
    deliveries = res.deliveries;
  } catch (err) {
    violation(`checker failed: ${String(err)}`);
  }
  phase("check");
  const failed = violationCount > 0 || fleet.crashes.length > 0;
  if (!failed || !o.keep) await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  return {
    round: o.round,
    seed: o.seed,
    database,
    faults,
    faultLog,
    messages,
    deliveries,
    violations,
    violationCount,
    crashes: fleet.crashes,
    clientRetries: fleet.lines("retry").length,
    retryCauses: retryCauses(fleet.lines("retry").map((l) => String(l.line.error))),
    seconds: (Date.now() - t0) / 1000,
    phases: phases.join(", "),
  };
}
