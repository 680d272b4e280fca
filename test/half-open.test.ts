/**
 * Half-open connections (docs/reliability.md, Findings 3): a TCP proxy between a worker and
 * a private PostgreSQL stops forwarding in both directions and never closes either side.
 * Without limits, a transaction on such a connection stays open on the server (a live
 * connection as far as PostgreSQL can tell) holding the actor's row lock and any channel
 * advisory lock it took, and the worker waits for its reply forever: the lease runs out,
 * nobody can claim the locked row, and the actors behind it never finish.
 *
 * With statementTimeout the worker gives the connection up (destroyed, the execution
 * abandoned as for any DatabaseUnavailableError), and the idle_in_transaction_session_timeout
 * troupe sets in its transactions makes the server roll the orphaned transaction back and
 * free its locks, so the actors are taken over and finish, every message processed once.
 *
 * Needs the PostgreSQL binaries (a private server) and real connections: not on PGlite.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pgLib from "pg";
import { DatabaseUnavailableError, Troupe, actor } from "../src/index.js";
import { PgDatabase } from "../src/storage/pg-database.js";
import { PG_URL, eventually, freshSchema, needsPostgres } from "./helpers.js";
import { PgProxy } from "./support/proxy.js";
import { startPrivatePostgres, type PrivatePostgres } from "./support/servers.js";

const PAIRS = 6;
const MESSAGES = 40;
const LEASE = "1s";
const STATEMENT_TIMEOUT = "2s";

/** Reads its mailbox; records each message in a transaction of its own. */
const consumer = actor("ho-consumer", async (ctx) => {
  await ctx.subscribe("ho-inbox", "direct");
  for (let i = 0; i < MESSAGES; i++) {
    const m = (await ctx.receive<{ n: number }>("ho-inbox"))!;
    await ctx.transaction("record", (tx) =>
      tx.query("INSERT INTO public.ho_seen (reader, source, n) VALUES ($1, 'direct', $2)", [
        ctx.id,
        m.data.n,
      ]),
    );
  }
  return "done";
});

/** Every publisher's broadcast messages, recorded the same way. */
const reader = actor("ho-reader", async (ctx) => {
  await ctx.subscribe("ho-news", "broadcast");
  for (let i = 0; i < PAIRS * MESSAGES; i++) {
    const m = (await ctx.receive<{ p: number; n: number }>("ho-news"))!;
    await ctx.transaction("record", (tx) =>
      tx.query("INSERT INTO public.ho_seen (reader, source, n) VALUES ($1, $2, $3)", [
        ctx.id,
        `news-${m.data.p}`,
        m.data.n,
      ]),
    );
  }
  return "done";
});

/** Sends to its consumer, publishes to everyone, and counts in a transaction, in a loop. */
const publisher = actor("ho-publisher", async (ctx, input: { p: number; to: string }) => {
  for (let n = 0; n < MESSAGES; n++) {
    await ctx.transaction("tick", (tx) =>
      tx.query("INSERT INTO public.ho_ticks (publisher, n) VALUES ($1, $2)", [ctx.id, n]),
    );
    await ctx.send(input.to, "ho-inbox", { n });
    await ctx.publish("ho-news", { p: input.p, n });
  }
  return "done";
});

const actors = [consumer, reader, publisher];

describe("half-open connections", { skip: needsPostgres }, () => {
  let pg: PrivatePostgres;
  let proxy: PgProxy;
  const troupes: Troupe[] = [];
  const schema = freshSchema("ho");

  before(async () => {
    pg = await startPrivatePostgres();
    proxy = new PgProxy(pg.port);
    await proxy.start();
    await pg.admin(`CREATE TABLE public.ho_seen (reader text NOT NULL, source text NOT NULL, n int NOT NULL);
      CREATE TABLE public.ho_ticks (publisher text NOT NULL, n int NOT NULL)`);
  });
  after(async () => {
    await proxy?.stop(); // first: a worker waiting on a half-open connection gets its reset
    await Promise.all(troupes.map((t) => t.stop().catch(() => {})));
    pg?.close();
  });

  const worker = (url: string, name: string) => {
    const t = new Troupe({
      database: url,
      schema,
      actors,
      lease: LEASE,
      statementTimeout: STATEMENT_TIMEOUT,
      pollInterval: "100ms",
      workerId: name,
      logger: () => {},
    });
    troupes.push(t);
    return t;
  };

  test("actors whose connections went half-open for good are taken over and finish, each message once", async () => {
    // Worker A reaches the server through the proxy (application_name marks its sessions).
    const viaProxy = `postgres://postgres@127.0.0.1:${proxy.port}/postgres?application_name=ho-a`;
    const a = worker(viaProxy, "ho-a");
    await a.start();
    const rd = await a.spawn(reader, {}, { id: "reader" });
    await eventually(async () => (await rd.status()) === "waiting", "the reader to subscribe");
    for (let p = 0; p < PAIRS; p++) {
      const c = await a.spawn(consumer, {}, { id: `c${p}` });
      await eventually(async () => (await c.status()) === "waiting", `consumer ${p} to subscribe`);
    }
    for (let p = 0; p < PAIRS; p++) await a.spawn(publisher, { p, to: `c${p}` }, { id: `p${p}` });

    const total = PAIRS * MESSAGES * 2;
    const seen = async () =>
      (await pg.admin<{ n: number }>("SELECT count(*)::int AS n FROM public.ho_seen"))[0]!.n;
    await eventually(async () => (await seen()) >= total / 5, "traffic to get going", 60_000);

    // Every connection worker A has now goes half-open, for good.
    const holed = proxy.holeAll();
    assert.ok(holed > 0, "worker A had connections to hole");
    // The scenario happened: one of A's transactions is left open on the server.
    await eventually(
      async () =>
        (
          await pg.admin<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE application_name = 'ho-a' AND state = 'idle in transaction'`,
          )
        )[0]!.n > 0,
      "a transaction of worker A left open on the server by the half-open connection",
    );

    // Worker B reaches the server directly; A may recover too over fresh connections.
    const b = worker(pg.url, "ho-b");
    await b.start();

    const ids = ["reader", ...Array.from({ length: PAIRS }, (_, p) => [`c${p}`, `p${p}`]).flat()];
    await eventually(
      async () => {
        const rows = await pg.admin<{ id: string; status: string }>(
          `SELECT id, status FROM "${schema}".actors WHERE id = ANY($1)`,
          [ids],
        );
        const left = rows.filter((r) => r.status !== "completed").map((r) => `${r.id} ${r.status}`);
        if (rows.length !== ids.length || left.length > 0)
          throw new Error(`not completed: ${left.join(", ") || "(rows missing)"}`);
        return true;
      },
      "every actor to complete after the half-open connections",
      120_000,
    );

    const dup = await pg.admin<{ reader: string; source: string; n: number; k: number }>(
      `SELECT reader, source, n, count(*)::int AS k FROM public.ho_seen
        GROUP BY 1, 2, 3 HAVING count(*) <> 1`,
    );
    assert.deepEqual(dup, [], "no message processed twice");
    assert.equal(await seen(), total, "every message processed");
    const ticks = await pg.admin<{ n: number; d: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT (publisher, n))::int AS d FROM public.ho_ticks",
    );
    assert.deepEqual(ticks[0], { n: PAIRS * MESSAGES, d: PAIRS * MESSAGES }, "every tick committed once");
  });
});

describe("statement limits on a user's pg.Pool", { skip: needsPostgres }, () => {
  test("a statement past statementTimeout is DatabaseUnavailableError and its client is dropped; transactions set the idle limit", async () => {
    const pool = new pgLib.Pool({ connectionString: PG_URL, max: 2 });
    const db = new PgDatabase(pool, { statementTimeoutMs: 200, idleInTransactionTimeoutMs: 4321 });
    try {
      await db.query("SELECT 1");
      const before = pool.totalCount;
      let err: unknown;
      try {
        await db.query("SELECT pg_sleep(3)");
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof DatabaseUnavailableError, `got ${String(err)}`);
      assert.match(err.message, /statementTimeout/);
      assert.equal(pool.totalCount, before - 1, "the timed-out client left the pool");
      // Inside a transaction too; the transaction is given up, the client destroyed.
      let txErr: unknown;
      try {
        await db.transaction((tx) => tx.query("SELECT pg_sleep(3)"));
      } catch (e) {
        txErr = e;
      }
      assert.ok(txErr instanceof DatabaseUnavailableError, `got ${String(txErr)}`);
      const shown = await db.transaction((tx) =>
        tx.query<{ v: string }>("SELECT current_setting('idle_in_transaction_session_timeout') AS v"),
      );
      assert.equal(shown.rows[0]!.v, "4321ms");
      // SET LOCAL: the session keeps the server's setting outside troupe's transactions.
      const outside = await db.query<{ v: string }>(
        "SELECT current_setting('idle_in_transaction_session_timeout') AS v",
      );
      assert.notEqual(outside.rows[0]!.v, "4321ms");
    } finally {
      await db.close();
      await pool.end();
    }
  });
});
