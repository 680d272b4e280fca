/* eslint-disable @typescript-eslint/unbound-method -- diagnostics patch prototypes from outside */
/**
 * Diagnostic: who delivers a fan-out round, and when? Logs every delivery attempt (drain on a
 * wakeup = sticky, or the sweep = forced) with its source count, capacity and result, per
 * round, to explain rounds whose last deliveries come seconds late.
 *   node --import tsx benchmarks/diag/fanout-tail.ts [subscribers=1000] [rounds=4] [--broadcast]
 */
import pg from "pg";
import { Troupe } from "../../src/index.js";
import { Worker } from "../../src/engine/worker.js";
import { fanSubscriber } from "../fanout.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema } from "../lib/env.js";

const nums = process.argv.filter((a) => /^\d+$/.test(a)).map(Number);
const SUBS = nums[0] ?? 1000;
const ROUNDS = nums[1] ?? 4;
const GROUP = !process.argv.includes("--broadcast");
let t0 = 0;
const log: string[] = [];
const ms = () => (Date.now() - t0).toString().padStart(6);
const origDeliver = Worker.prototype.deliver;
Worker.prototype.deliver = async function (this: any, ...args: Parameters<typeof origDeliver>) {
  const [sources, sticky] = args;
  const free = this.free?.() ?? "?";
  const started = ms();
  const n = await origDeliver.apply(this, args);
  log.push(
    `${started} → ${ms()}  ${sticky ? "drain" : "SWEEP"} sources=${sources.length} free=${free} delivered=${n}`,
  );
  return n;
};
const origSweep = (Worker.prototype as any).sweep;
if (origSweep)
  (Worker.prototype as any).sweep = async function (this: any) {
    log.push(
      `${ms()} sweep tick (dirty=${this.dirtySources?.size}, delivering=${this.delivering}, running=${this.running?.size})`,
    );
    return origSweep.call(this);
  };

const schema = freshSchema("tail");
const table = `"${schema}".fan_receipts`;
const t = new Troupe({
  actors: [fanSubscriber],
  database: PG_URL,
  redis: REDIS_URL,
  schema,
  logger: () => {},
});
const side = new pg.Pool({ connectionString: PG_URL, max: 2 });
const q = async (sql: string, p: unknown[] = []) => (await side.query(sql, p)).rows;
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));
await t.start();
await q(`CREATE TABLE ${table} (round int, actor_id text, at timestamptz, PRIMARY KEY (round, actor_id))`);
for (let i = 0; i < SUBS; i += 50)
  await Promise.all(
    Array.from({ length: Math.min(50, SUBS - i) }, (_, k) =>
      t.spawn(
        fanSubscriber,
        { mode: GROUP ? "group" : "broadcast", rounds: ROUNDS, table },
        { id: `fan-${i + k}` },
      ),
    ),
  );
const waiting = async () =>
  Number(
    (await q(`SELECT count(*) n FROM "${schema}".actors WHERE status='waiting' AND wait_kind='receive'`))[0]
      .n,
  );
for (let r = 0; r < ROUNDS; r++) {
  while ((await waiting()) < SUBS) await sleep(20);
  log.length = 0;
  t0 = Date.now();
  if (GROUP) await t.broadcast("bench-fan-group", "bench-fan-direct", { round: r });
  else await t.publish("bench-fan", { round: r });
  while (Number((await q(`SELECT count(*) n FROM ${table} WHERE round = $1`, [r]))[0].n) < SUBS)
    await sleep(20);
  const hist = await q(
    `SELECT (extract(epoch FROM at) * 1000 - $2)::int / 250 * 250 AS bucket, count(*)::int n FROM ${table} WHERE round = $1 GROUP BY 1 ORDER BY 1`,
    [r, t0],
  );
  console.log(
    `\nround ${r}: processed per 250 ms bucket: ${hist.map((h) => `${h.bucket}:${h.n}`).join(" ")}`,
  );
  const total = hist.at(-1).bucket;
  if (total > 3000 || process.argv.includes("--all")) console.log(log.join("\n"));
}
await t.stop();
await side.end();
await dropSchema(schema);
process.exit(0);
