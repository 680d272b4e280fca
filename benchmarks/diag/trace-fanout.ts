/**
 * Diagnostic (not a benchmark): where does a fan-out round spend its time?
 * Times every pg statement (pg-trace.ts) and samples pg_stat_activity every 25 ms for
 * sessions waiting on a lock, during one measured broadcast (or group) round.
 *   node --import tsx benchmarks/diag/trace-fanout.ts [subscribers=1000] [--group] [--concurrency N] [--pool N]
 */
import { breakdown, installPgTrace, now } from "./pg-trace.js";
installPgTrace();
// Imported after the patch, so every pg client troupe makes is traced.
const { Troupe } = await import("../../src/index.js");
const { createReceiptsSql, fanSubscriber, spawnFanSubscribers } = await import("../fanout.js");
const { PG_URL, REDIS_URL, dropSchema, freshSchema } = await import("../lib/env.js");
const { Side, sleep } = await import("./side.js");

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const SUBS = Number(
  process.argv.slice(2).find((a, i, all) => /^\d+$/.test(a) && !all[i - 1]?.startsWith("--")) ?? 1000,
);
const GROUP = process.argv.includes("--group");
const schema = freshSchema("tracefan");
const table = `"${schema}".fan_receipts`;
// application_name tags troupe's own sessions so the sampler sees only them (the database is shared).
const APP = `troupe-diag-${process.pid}`;
const t = new Troupe({
  actors: [fanSubscriber],
  database: `${PG_URL}?application_name=${APP}`,
  redis: REDIS_URL,
  schema,
  ...(arg("--concurrency") ? { concurrency: arg("--concurrency") } : {}),
  ...(arg("--pool") ? { poolSize: arg("--pool") } : {}),
  logger: () => {},
});
const side = new Side(3);
await t.start();
await side.rows(createReceiptsSql(table));
await spawnFanSubscribers(t, SUBS, { mode: GROUP ? "group" : "broadcast", rounds: 3, table });
const dbname = (await side.rows<{ d: string }>("SELECT current_database() d"))[0]!.d;
for (let r = 0; r < 2; r++) {
  while ((await side.waiting(schema)) < SUBS) await sleep(50);
  const samples: Record<string, number> = {};
  let nSamples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const row of await side.rows<{ w: string; n: number }>(
        `SELECT state || coalesce(' / ' || wait_event_type || ':' || wait_event, '') AS w, count(*)::int n
           FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 GROUP BY 1`,
        [dbname, APP],
      ))
        samples[row.w] = (samples[row.w] ?? 0) + row.n;
      nSamples++;
      await sleep(25);
    }
  })();
  const from = now();
  const t0 = Date.now();
  if (GROUP) await t.broadcast("bench-fan-group", "bench-fan-direct", { round: r });
  else await t.publish("bench-fan", { round: r });
  let n = 0;
  while (n < SUBS && Date.now() - t0 < 60_000) {
    n = await side.count(`SELECT count(*) n FROM ${table} WHERE round = $1`, [r]);
    if (n < SUBS) await sleep(20);
  }
  const to = now();
  sampling = false;
  await sampler;
  const [{ l: last } = { l: NaN }] = await side.rows<{ l: number }>(
    `SELECT extract(epoch FROM max(at)) * 1000 AS l FROM ${table} WHERE round = $1`,
    [r],
  );
  console.log(
    `\nround ${r}${r === 0 ? " (warm-up)" : ""}: ${n}/${SUBS} processed, last commit after ${(Number(last) - t0).toFixed(0)} ms`,
  );
  if (r === 0) continue;
  console.log(`statements during the round (per delivered subscriber: divide by ${SUBS}):`);
  console.log(breakdown(from, to));
  console.log(
    `pg_stat_activity, troupe's pool sessions by state / wait event, mean per sample (${nSamples} samples, 25 ms apart):`,
  );
  for (const [k, v] of Object.entries(samples).sort((a, b) => b[1] - a[1]))
    console.log(`  ${k.padEnd(30)} ${(v / nSamples).toFixed(2)}`);
}
await t.stop();
await side.end();
await dropSchema(schema);
process.exit(0);
