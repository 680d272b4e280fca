/* eslint-disable @typescript-eslint/unbound-method -- diagnostics patch prototypes from outside */
/**
 * Diagnostic (not a benchmark): where does a ping-pong round trip spend its time?
 * Monkeypatches (from outside, src/ untouched) pg's Client.query / Pool.connect, the Redis
 * wakeup transport and the worker's delivery rounds (Delivery.deliver), runs the 1-process pg+redis ping-pong, and
 * prints a per-round-trip breakdown and the timeline of a few round trips.
 *
 *   node --import tsx benchmarks/diag/trace-ping-pong.ts [n=300] [--local] [--slowest]
 *   (--local: in-process wakeups instead of Redis, to separate the wakeup transport)
 */
import { Troupe, actor, type ActorContext } from "../../src/index.js";
import { Delivery } from "../../src/engine/worker/delivery.js";
import { RedisWakeups } from "../../src/wakeups/redis-wakeups.js";
import { Execution } from "../../src/engine/execution/execution.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema } from "../lib/env.js";
import { summarize } from "../lib/stats.js";
import { evs, installPgTrace, now } from "./pg-trace.js";

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 300);
const LOCAL = process.argv.includes("--local");
const WARM = 50;

// ---- patches ---------------------------------------------------------------------------
installPgTrace();
const origPub = RedisWakeups.prototype.publish;
RedisWakeups.prototype.publish = function (this: RedisWakeups, w) {
  const t = now();
  evs.push({ t0: t, t1: t, what: `redis PUBLISH ${w.map((x) => `${x.kind}:${x.key}`).join(",")}` });
  return origPub.call(this, w);
};
// dispatch is private: reached through its shape.
const redisProto = RedisWakeups.prototype as unknown as { dispatch(this: RedisWakeups, frame: Buffer): void };
const origDispatch = redisProto.dispatch;
redisProto.dispatch = function (frame) {
  const t = now();
  evs.push({ t0: t, t1: t, what: `redis message received (${frame.length} bytes)` });
  origDispatch.call(this, frame);
};
const origDeliver = Delivery.prototype.deliver;
Delivery.prototype.deliver = async function (this: Delivery, ...args: Parameters<typeof origDeliver>) {
  const [sources, sticky] = args;
  const t0 = now();
  const n = await origDeliver.apply(this, args);
  evs.push({ t0, t1: now(), what: `worker.deliver(${sources.join(",")}, sticky=${sticky}) → ${n}` });
  return n;
};
const origResume = Execution.prototype.resume;
Execution.prototype.resume = function (this: Execution, row, entry) {
  const ok = origResume.call(this, row, entry);
  const t = now();
  evs.push({ t0: t, t1: t, what: `resume ${row.id} in memory: ${ok}` });
  return ok;
};

// ---- actors with absolute timestamps ------------------------------------------------------
const marks: { i: number; t0: number; t1: number; t2: number }[] = [];
const pong = actor("diag-pong", async (ctx: ActorContext, input: { n: number }) => {
  await ctx.subscribe("dping", "direct");
  for (let i = 0; i < input.n; i++) {
    const m = await ctx.receive<number>("dping");
    const t = now();
    evs.push({ t0: t, t1: t, what: `PONGER got ping ${m!.data}` });
    await ctx.send(m!.sender!, "dpong", m!.data);
  }
  return "done";
});
const ping = actor("diag-ping", async (ctx: ActorContext, input: { peer: string; n: number }) => {
  await ctx.subscribe("dpong", "direct");
  for (let i = 0; i < input.n; i++) {
    const t0 = now();
    evs.push({ t0, t1: t0, what: `PINGER send ping ${i}` });
    await ctx.send(input.peer, "dping", i);
    const t1 = now();
    await ctx.receive<number>("dpong");
    const t2 = now();
    evs.push({ t0: t2, t1: t2, what: `PINGER got pong ${i}` });
    marks.push({ i, t0, t1, t2 });
  }
  return "ok";
});

const schema = freshSchema("diag");
const t = new Troupe({
  actors: [ping, pong],
  database: PG_URL,
  ...(LOCAL ? {} : { redis: REDIS_URL }),
  schema,
  // troupe's warnings go into the timeline (e.g. a Redis outage next to a stalled hop)
  logger: (l, m, f) => {
    const t = now();
    if (l !== "debug") evs.push({ t0: t, t1: t, what: `LOG ${l}: ${m} ${JSON.stringify(f ?? {})}` });
  },
});
await t.start();
try {
  await t.spawn(pong, { n: N + WARM }, { id: "dpong-1" });
  const ref = await t.spawn(ping, { peer: "dpong-1", n: N + WARM }, { id: "dping-1" });
  await ref.result({ timeout: "10m" });
} finally {
  await t.stop();
  await dropSchema(schema);
}

const measured = marks.filter((m) => m.i >= WARM);
const rtt = summarize(measured.map((m) => m.t2 - m.t0));
console.log(`round trips: ${measured.length}  (wakeups: ${LOCAL ? "in-process" : "redis"})`);
console.log(`rtt p50 ${rtt.p50.toFixed(2)} ms  p99 ${rtt.p99.toFixed(2)}  mean ${rtt.mean.toFixed(2)}`);
// Per label: count and total time of events STARTING inside a round trip window.
const per = new Map<string, { n: number; ms: number }>();
for (const m of measured) {
  for (const e of evs) {
    if (e.t0 < m.t0 || e.t0 > m.t2) continue;
    const k = e.what
      .replace(/\d+/g, "#")
      .replace(/dp(o|i)ng-#/g, "x")
      .slice(0, 60);
    const v = per.get(k) ?? { n: 0, ms: 0 };
    v.n++;
    v.ms += e.t1 - e.t0;
    per.set(k, v);
  }
}
console.log("\nper round trip (events starting inside the window): count, mean ms each, total ms/rtt");
for (const [k, v] of [...per].sort((a, b) => b[1].ms - a[1].ms))
  console.log(
    `  ${k.padEnd(62)} ${(v.n / measured.length).toFixed(2).padStart(6)}  ${(v.ms / v.n).toFixed(3).padStart(8)}  ${(v.ms / measured.length).toFixed(3).padStart(8)}`,
  );
// Timeline of three round trips near the median.
const sorted = [...measured].sort((a, b) => a.t2 - a.t0 - (b.t2 - b.t0));
const picks = [sorted[Math.floor(sorted.length / 2)]!, sorted[Math.floor(sorted.length * 0.9)]!];
if (process.argv.includes("--slowest")) picks.push(sorted.at(-1)!);
for (const m of picks) {
  console.log(`\ntimeline of round trip ${m.i} (${(m.t2 - m.t0).toFixed(2)} ms), ms since ping sent:`);
  for (const e of evs.filter((e) => e.t0 >= m.t0 - 0.01 && e.t0 <= m.t2 + 0.01).sort((a, b) => a.t0 - b.t0))
    console.log(
      `  +${(e.t0 - m.t0).toFixed(2).padStart(7)} → +${(e.t1 - m.t0).toFixed(2).padStart(7)}  ${e.conn ? `c${e.conn} ` : "    "}${e.what}`,
    );
}
process.exit(0);
