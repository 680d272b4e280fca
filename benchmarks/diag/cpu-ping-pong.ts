/**
 * Diagnostic: CPU cost of a ping-pong round trip (1 process, pg+redis or --local wakeups).
 * Reports the round-trip p50 with this process's CPU per round trip, the CPU of all
 * postgres processes per round trip (machine-wide: includes anybody else's queries) and how
 * busy the machine's CPUs were meanwhile (/proc/stat).
 * With --probe, a separate client commits single-row INSERTs (every 5 ms) while the round trips
 * run, so troupe's statement latencies can be compared with a plain commit at the same moment.
 *   node --import tsx [--cpu-prof] benchmarks/diag/cpu-ping-pong.ts [n=500] [--local] [--probe]
 */
import { readFileSync, readdirSync } from "node:fs";
import pg from "pg";
import { Troupe } from "../../src/index.js";
import { pinger, ponger } from "../ping-pong-actors.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema } from "../lib/env.js";
import { summarize } from "../lib/stats.js";

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 500);
const LOCAL = process.argv.includes("--local");
const TICK = 100; // USER_HZ

function postgresCpuMs(): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (comm !== "postgres") continue;
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime + stime
    } catch {
      // exited meanwhile
    }
  }
  return (ticks / TICK) * 1000;
}
function cpuBusy(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

const schema = freshSchema("cpu");

function startProbe() {
  const c = new pg.Client({ connectionString: PG_URL });
  const out: number[] = [];
  let running = true;
  const loop = (async () => {
    await c.connect();
    await c.query(`CREATE TABLE "${schema}".probe (id bigserial PRIMARY KEY, v int)`);
    while (running) {
      const t0 = performance.now();
      await c.query(`INSERT INTO "${schema}".probe (v) VALUES (1)`);
      out.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 5));
    }
    await c.end();
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return out;
    },
  };
}
const t = new Troupe({
  actors: [pinger, ponger],
  database: PG_URL,
  ...(LOCAL ? {} : { redis: REDIS_URL }),
  schema,
  logger: () => {},
});
await t.start();
try {
  await t.spawn(ponger, { n: N + 100 }, { id: "pong" });
  // warm-up separately so the CPU window covers measured round trips only
  const warm = await t.spawn(pinger, { peer: "pong", warmup: 0, n: 100 }, { id: "ping-warm" });
  await warm.result({ timeout: "5m" });
  await t.spawn(ponger, { n: N }, { id: "pong2" });
  const probe = process.argv.includes("--probe") ? startProbe() : undefined;
  const c0 = process.cpuUsage();
  const p0 = postgresCpuMs();
  const s0 = cpuBusy();
  const w0 = performance.now();
  const ref = await t.spawn(pinger, { peer: "pong2", warmup: 0, n: N }, { id: "ping" });
  const res = await ref.result({ timeout: "10m" });
  const wall = performance.now() - w0;
  const c1 = process.cpuUsage(c0);
  const p1 = postgresCpuMs() - p0;
  const s1 = cpuBusy();
  const rtt = summarize(res.rtt);
  console.log(
    `wakeups: ${LOCAL ? "in-process" : "redis"}; ${N} round trips in ${wall.toFixed(0)} ms; entries ${res.entries}`,
  );
  console.log(`rtt p50 ${rtt.p50.toFixed(2)} ms, p99 ${rtt.p99.toFixed(2)}, mean ${rtt.mean.toFixed(2)}`);
  console.log(
    `node CPU per round trip: ${((c1.user + c1.system) / 1000 / N).toFixed(2)} ms (user ${(c1.user / 1000 / N).toFixed(2)}, sys ${(c1.system / 1000 / N).toFixed(2)})`,
  );
  console.log(`postgres CPU per round trip (all backends, machine-wide): ${(p1 / N).toFixed(2)} ms`);
  if (probe) {
    const p = summarize(await probe.stop());
    console.log(
      `concurrent plain INSERT commit (probe, one client): p50 ${p.p50.toFixed(3)} ms, p90 ${p.p90.toFixed(3)}, p99 ${p.p99.toFixed(3)} (n=${p.n})`,
    );
  }
  console.log(
    `machine CPU busy meanwhile: ${((100 * (s1.busy - s0.busy)) / (s1.total - s0.total)).toFixed(0)}% of 2 cores`,
  );
} finally {
  await t.stop();
  await dropSchema(schema);
}
process.exit(0);
