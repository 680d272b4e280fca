/**
 * Diagnostic: runs the delivery statement (ChannelStore.deliver) for a broadcast source of a
 * kept schema (BENCH_KEEP_SCHEMA / fanout-stuck --keep) inside a transaction that is rolled back,
 * and says whom it would deliver to — e.g. to show that waiting subscribers are skipped.
 *   node --import tsx benchmarks/diag/deliver-probe.ts <schema> [source=bench-fan] [limit=100]
 */
import type { SqlClient } from "../../src/storage/database.js";
import { Storage } from "../../src/storage/storage.js";
import { PgDatabase } from "../../src/storage/pg-database.js";
import { PG_URL } from "../lib/env.js";

const [schema, source = "bench-fan", limit = "100"] = process.argv.slice(2);
if (!schema) throw new Error("usage: deliver-probe.ts <schema> [source] [limit]");
const db = new PgDatabase(PG_URL);
const st = new Storage(db, schema);
console.log("pendingSources:", await st.delivery.pendingSources(1000, null));
const real = db.transaction.bind(db);
// Run the delivery's transaction, print whom it would deliver to, then roll it back.
db.transaction = (fn: (tx: SqlClient) => Promise<unknown>) =>
  real(async (tx) => {
    const r = (await fn(tx)) as { row: { id: string } }[];
    console.log(
      `would deliver ${r.length}:`,
      r.slice(0, 5).map((d) => d.row.id),
    );
    throw new Error("rolled back");
  });
for (const sticky of [false, true]) {
  console.log(`parkedHereOnly=${sticky}`);
  await st.delivery
    .deliver([source], "probe", 30_000, Number(limit), sticky, ["bench-fan-sub"])
    .catch((e: Error) => e.message !== "rolled back" && console.log(String(e)));
}
await db.close();
