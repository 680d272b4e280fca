/**
 * Diagnostic: EXPLAIN ANALYZE of the delivery statement (DELIVER in src/storage/sql/deliver.ts)
 * on a realistic state: N fan-out subscribers waiting (broadcast channel, or direct mailboxes
 * with --group), one message published. Everything runs in a transaction that is rolled back.
 *   node --import tsx benchmarks/diag/explain-deliver.ts [subscribers=1000] [--group] [--limit 100]
 */
import pg from "pg";
import { Troupe } from "../../src/index.js";
import { Storage } from "../../src/storage/storage.js";
import { PgDatabase } from "../../src/storage/pg-database.js";
import type { SqlClient } from "../../src/storage/database.js";
import { mailbox, mailboxPrefix } from "../../src/storage/mailbox.js";
import { createReceiptsSql, fanSubscriber, spawnFanSubscribers, waitingSubscribersSql } from "../fanout.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema } from "../lib/env.js";
import { sleep } from "./side.js";

const SUBS = Number(
  process.argv.slice(2).find((a, i, all) => /^\d+$/.test(a) && all[i - 1] !== "--limit") ?? 1000,
);
const GROUP = process.argv.includes("--group");
const li = process.argv.indexOf("--limit");
const LIMIT = li > 0 ? Number(process.argv[li + 1]) : 100;
const schema = freshSchema("explain");
const table = `"${schema}".fan_receipts`;
// One client, not a pool: the EXPLAINs below run inside BEGIN … ROLLBACK on one session.
const side = new pg.Client({ connectionString: PG_URL });
await side.connect();
const t = new Troupe({
  actors: [fanSubscriber],
  database: PG_URL,
  redis: REDIS_URL,
  schema,
  logger: () => {},
});
await t.start();
try {
  await side.query(createReceiptsSql(table));
  await spawnFanSubscribers(t, SUBS, { mode: GROUP ? "group" : "broadcast", rounds: 1, table });
  for (;;) {
    const { rows } = await side.query<{ n: string }>(waitingSubscribersSql(schema));
    if (Number(rows[0]?.n) === SUBS) break;
    await sleep(100);
  }
  await t.stop(); // the subscribers stay waiting in the database; nobody delivers any more

  const db = new PgDatabase(PG_URL);
  const st = new Storage(db, schema);
  let sources: string[];
  if (GROUP) {
    // A group broadcast as troupe.broadcast writes it (src/messaging/outgoing.ts): one insert.
    await st.messages.insert(
      {
        to: { group: "bench-fan-group", mailboxPrefix: mailboxPrefix("bench-fan-direct") },
        data: Buffer.from([0x80]),
        metadata: {},
      },
      { by: "client" },
    );
    sources = Array.from({ length: SUBS }, (_, i) => mailbox("bench-fan-direct", `fan-${i}`)).slice(0, 500);
  } else {
    await st.messages.insert(
      { to: { source: "bench-fan", directTo: null }, data: Buffer.from([0x80]), metadata: {} },
      { by: "client" },
    );
    sources = ["bench-fan"];
  }
  // Capture the exact DELIVER text and parameters.
  let captured: { text: string; params: unknown[] } | undefined;
  type Query = (this: pg.Client, ...args: unknown[]) => unknown;
  const client = pg.Client.prototype as unknown as { query: Query };
  const orig = client.query;
  client.query = function (...args) {
    // troupe's statements arrive as a QueryConfig ({ name, text, values }: named prepared
    // statements); a plain (text, params) call is read too.
    const [first, second] = args;
    const cfg = typeof first === "object" && first !== null ? (first as { text?: unknown; values?: unknown }) : undefined;
    const text = cfg ? cfg.text : first;
    const params = cfg ? cfg.values : second;
    if (typeof text === "string" && text.trimStart().startsWith("WITH locked AS"))
      captured = { text, params: Array.isArray(params) ? (params as unknown[]) : [] };
    return orig.apply(this, args);
  };
  // Every transaction of this storage rolls back: the probe changes nothing.
  const origTx = db.transaction.bind(db);
  db.transaction = <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> =>
    origTx(async (tx) => {
      await fn(tx);
      throw new Error("rollback");
    });
  await st.delivery.deliver(sources, "probe", 30_000, LIMIT, false, ["bench-fan-sub"]).catch(() => {});
  client.query = orig;
  await db.close();
  if (!captured) throw new Error("DELIVER not captured");

  await side.query("BEGIN");
  const plan = await side.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS, SUMMARY) ${captured.text}`, captured.params);
  await side.query("ROLLBACK");
  const lines = plan.rows.map((r) => r["QUERY PLAN"]);
  console.log(
    `DELIVER, ${SUBS} waiting ${GROUP ? "group members (direct mailboxes)" : "broadcast subscribers"}, ${sources.length} source(s), limit ${LIMIT}:`,
  );
  console.log(
    lines
      .filter(
        (l) =>
          /Planning|Execution|^\S|CTE |Limit|Insert|Update|Delete/.test(l.trim()) || l.startsWith("  ->"),
      )
      .join("\n"),
  );
  // Planning cost alone, repeated (node-postgres sends unnamed statements: parsed and planned on every call).
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    await side.query("BEGIN");
    const p = await side.query<{ "QUERY PLAN": string }>(`EXPLAIN (SUMMARY) ${captured.text}`, captured.params);
    await side.query("ROLLBACK");
    const m = /Planning Time: ([\d.]+)/.exec(p.rows.map((r) => r["QUERY PLAN"]).join("\n"));
    if (m) times.push(Number(m[1]));
  }
  times.sort((a, b) => a - b);
  console.log(`planning time alone, median of 20: ${times[10]?.toFixed(3)} ms`);
} finally {
  await t.stop();
  await side.end();
  await dropSchema(schema);
}
process.exit(0);
