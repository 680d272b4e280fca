/* eslint-disable @typescript-eslint/unbound-method -- diagnostics patch prototypes from outside */
/**
 * Diagnostic: run broadcast fan-out rounds and, if a round does not complete, dump the
 * state of the subscribers that did not process it (schema kept for inspection).
 *   node --import tsx benchmarks/diag/fanout-stuck.ts [subscribers=200] [rounds=5] [--keep]
 */
import { Troupe } from "../../src/index.js";
import { Delivery, type DeliveryDeps } from "../../src/engine/worker/delivery.js";
import { DeliveryStore } from "../../src/storage/delivery-store.js";
import { createReceiptsSql, fanSubscriber, spawnFanSubscribers } from "../fanout.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema } from "../lib/env.js";
import { Side, sleep } from "./side.js";

const nums = process.argv.filter((a) => /^\d+$/.test(a)).map(Number);
const SUBS = nums[0] ?? 200;
const ROUNDS = nums[1] ?? 5;
const schema = freshSchema("stuck");
// Trace every delivery attempt: (sticky = parkedHereOnly, limit) → delivered, and what the worker runs.
const trace: string[] = [];
const origStoreDeliver = DeliveryStore.prototype.deliver;
DeliveryStore.prototype.deliver = async function (this: DeliveryStore, ...args: Parameters<typeof origStoreDeliver>) {
  const [sources, , , limit, sticky] = args;
  const r = await origStoreDeliver.apply(this, args);
  trace.push(
    `${new Date().toISOString().slice(17, 23)} store.deliver(${sources.length} sources, limit=${limit}, sticky=${sticky}) → ${r.length}`,
  );
  return r;
};
// The worker's delivery rounds (src/engine/worker/delivery.ts); "worker.deliver" in the trace.
const origWorkerDeliver = Delivery.prototype.deliver;
Delivery.prototype.deliver = async function (this: Delivery, ...args: Parameters<typeof origWorkerDeliver>) {
  const [, sticky] = args;
  // Its deps (the worker's slots) are private: reached through their shape.
  const running = (this as unknown as { d: DeliveryDeps }).d.slots.runningCount;
  const r = await origWorkerDeliver.apply(this, args);
  if (r === 0)
    trace.push(
      `${new Date().toISOString().slice(17, 23)} worker.deliver(sticky=${sticky}) running=${running} → 0`,
    );
  return r;
};
const table = `"${schema}".fan_receipts`;
const logs: string[] = [];
const t = new Troupe({
  actors: [fanSubscriber],
  database: PG_URL,
  redis: REDIS_URL,
  schema,
  logger: (l, m, f) => logs.push(`${new Date().toISOString()} ${l} ${m} ${JSON.stringify(f ?? {})}`),
});
const side = new Side();
const q = side.rows.bind(side);
let failed = false;
await t.start();
await q(createReceiptsSql(table));
await spawnFanSubscribers(t, SUBS, { mode: "broadcast", rounds: ROUNDS, table });
while ((await side.waiting(schema)) < SUBS) await sleep(50);
for (let r = 0; r < ROUNDS && !failed; r++) {
  const t0 = Date.now();
  await t.publish("bench-fan", { round: r });
  let n = 0;
  while (Date.now() - t0 < 20_000) {
    n = await side.count(`SELECT count(*) n FROM ${table} WHERE round=$1`, [r]);
    if (n === SUBS) break;
    await sleep(50);
  }
  console.log(`round ${r}: ${n}/${SUBS} after ${Date.now() - t0} ms`);
  if (n < SUBS) {
    failed = true;
    const missing = await q<{ id: string }>(
      `SELECT a.id, a.status, a.wait_seq, a.wait_kind, a.lease_owner, a.lease_expires_at, a.sticky_worker, a.journal_version, a.lease_version,
              s.cursor, s.wait_seq AS sub_wait_seq
         FROM "${schema}".actors a JOIN "${schema}".subscriptions s ON s.actor_id = a.id
        WHERE a.id NOT IN (SELECT actor_id FROM ${table} WHERE round = $1) ORDER BY a.id`,
      [r],
    );
    console.log("missing subscribers:", missing);
    console.log(
      "messages:",
      await q(`SELECT id, channel, published_at FROM "${schema}".messages ORDER BY id`),
    );
    for (const m of missing.slice(0, 3))
      console.log(
        `journal of ${m.id}:`,
        await q(
          `SELECT seq, kind, name, created_at FROM "${schema}".journal WHERE actor_id=$1 ORDER BY seq`,
          [m.id],
        ),
      );
    console.log("worker", t.workerId);
    console.log("delivery trace (last 25):", trace.slice(-25));
    console.log(
      "what the DELIVER 'locked' CTE picks now (limit 100), by cursor:",
      await q(`SELECT s.cursor, a.sticky_worker IS NOT NULL AS sticky, count(*) FROM (
                 SELECT a.id FROM "${schema}".actors a WHERE a.status = 'waiting'
                    AND a.id IN (SELECT s.actor_id FROM "${schema}".subscriptions s WHERE s.source = 'bench-fan' AND s.wait_seq IS NOT NULL)
                  LIMIT 100) l JOIN "${schema}".subscriptions s ON s.actor_id = l.id JOIN "${schema}".actors a ON a.id = l.id GROUP BY 1, 2`),
    );
    console.log("logs:", logs.slice(-30));
  } else {
    while ((await side.waiting(schema)) < SUBS) await sleep(50);
  }
}
await t.stop();
await side.end();
if (!failed || !process.argv.includes("--keep")) await dropSchema(schema);
else console.log(`schema kept: ${schema}`);
process.exit(0);
