/**
 * Diagnostic (not a benchmark): where does a fan-out round spend its time?
 * Times every pg statement (pg-trace.ts) and samples pg_stat_activity every 25 ms for
 * sessions waiting on a lock, during one measured broadcast (or group) round.
 *   node --import tsx benchmarks/diag/trace-fanout.ts [subscribers=1000] [--group] [--concurrency N] [--pool N]
 */
import pg from "pg";
import { breakdown, evs, installPgTrace, now } from "./pg-trace.js";
installPgTrace();
const { Troupe } = await import("../../src/index.js");
const { fanSubscriber } = await import("../fanout.js");
const { PG_URL, REDIS_URL, dropSchema, freshSchema } = await import("../lib/env.js");

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
const side = new pg.Pool({ connectionString: PG_URL, max: 3 });
const q = async (sql: string, p: unknown[] = []) => (await side.query(sql, p)).rows;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await t.start();
await side.query(
  `CREATE TABLE ${table} (round int, actor_id text, at timestamptz, PRIMARY KEY (round, actor_id))`,
);
for (let i = 0; i < SUBS; i += 50)
  await Promise.all(
    Array.from({ length: Math.min(50, SUBS - i) }, (_, k) =>
      t.spawn(
        fanSubscriber,
        { mode: GROUP ? "group" : "broadcast", rounds: 3, table },
        { id: `fan-${i + k}` },
      ),
    ),
  );
const waiting = async () =>
  Number(
    (await q(`SELECT count(*) n FROM "${schema}".actors WHERE status='waiting' AND wait_kind='receive'`))[0]
      .n,
  );
const dbname = (await q("SELECT current_database() d"))[0].d;
for (let r = 0; r < 2; r++) {
  while ((await waiting()) < SUBS) await sleep(50);
  const samples: Record<string, number> = {};
  let nSamples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const row of await q(
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
    n = Number((await q(`SELECT count(*) n FROM ${table} WHERE round = $1`, [r]))[0].n);
    if (n < SUBS) await sleep(20);
  }
  const to = now();
  sampling = false;
  await sampler;
  const last = (
    await q(`SELECT extract(epoch FROM max(at)) * 1000 AS l FROM ${table} WHERE round = $1`, [r])
  )[0].l;
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
void evs;
process.exit(0);
