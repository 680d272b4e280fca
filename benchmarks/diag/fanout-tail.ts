/* eslint-disable @typescript-eslint/unbound-method -- diagnostics patch prototypes from outside */
/**
 * Diagnostic: who delivers a fan-out round, and when? Logs every delivery attempt (drain on a
 * wakeup = sticky, or the sweep = forced) with its source count, capacity and result, per
 * round, to explain rounds whose last deliveries come seconds late.
 *   node --import tsx benchmarks/diag/fanout-tail.ts [subscribers=1000] [rounds=4] [--broadcast]
 */
import { Troupe } from "../../src/index.js";
import { Delivery, type DeliveryDeps } from "../../src/engine/worker/delivery.js";
import { createReceiptsSql, fanSubscriber, spawnFanSubscribers } from "../fanout.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema } from "../lib/env.js";
import { Side, sleep } from "./side.js";

const nums = process.argv.filter((a) => /^\d+$/.test(a)).map(Number);
const SUBS = nums[0] ?? 1000;
const ROUNDS = nums[1] ?? 4;
const GROUP = !process.argv.includes("--broadcast");
let t0 = 0;
const log: string[] = [];
const ms = () => (Date.now() - t0).toString().padStart(6);
/** The worker's delivery state this diagnostic reads that is private, by its shape. */
interface DeliveryInsides {
  /** Its deps: the worker's slots (free, runningCount). */
  d: DeliveryDeps;
  dirtySources: Set<string>;
}
const insides = (x: Delivery) => x as unknown as DeliveryInsides;
// The worker's delivery rounds and sweep (src/engine/worker/delivery.ts).
const origDeliver = Delivery.prototype.deliver;
Delivery.prototype.deliver = async function (this: Delivery, ...args: Parameters<typeof origDeliver>) {
  const [sources, sticky] = args;
  const free = insides(this).d.slots.free;
  const started = ms();
  const n = await origDeliver.apply(this, args);
  log.push(
    `${started} → ${ms()}  ${sticky ? "drain" : "SWEEP"} sources=${sources.length} free=${free} delivered=${n}`,
  );
  return n;
};
const origSweep = Delivery.prototype.sweep;
Delivery.prototype.sweep = async function (this: Delivery) {
  const w = insides(this);
  log.push(
    `${ms()} sweep tick (dirty=${w.dirtySources.size}, delivering=${this.delivering}, running=${w.d.slots.runningCount})`,
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
const side = new Side();
await t.start();
await side.rows(createReceiptsSql(table));
await spawnFanSubscribers(t, SUBS, { mode: GROUP ? "group" : "broadcast", rounds: ROUNDS, table });
for (let r = 0; r < ROUNDS; r++) {
  while ((await side.waiting(schema)) < SUBS) await sleep(20);
  log.length = 0;
  t0 = Date.now();
  if (GROUP) await t.broadcast("bench-fan-group", "bench-fan-direct", { round: r });
  else await t.publish("bench-fan", { round: r });
  while ((await side.count(`SELECT count(*) n FROM ${table} WHERE round = $1`, [r])) < SUBS) await sleep(20);
  const hist = await side.rows<{ bucket: number; n: number }>(
    `SELECT (extract(epoch FROM at) * 1000 - $2)::int / 250 * 250 AS bucket, count(*)::int n FROM ${table} WHERE round = $1 GROUP BY 1 ORDER BY 1`,
    [r, t0],
  );
  console.log(
    `\nround ${r}: processed per 250 ms bucket: ${hist.map((h) => `${h.bucket}:${h.n}`).join(" ")}`,
  );
  const total = hist.at(-1)?.bucket ?? 0;
  if (total > 3000 || process.argv.includes("--all")) console.log(log.join("\n"));
}
await t.stop();
await side.end();
await dropSchema(schema);
process.exit(0);
