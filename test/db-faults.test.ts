/**
 * Database faults (issue 10, items 1 and 3): worker processes ride out killed connections
 * and PostgreSQL restarts (fast and immediate) without exiting, and resume by themselves;
 * client calls during an outage reject with a typed, retryable DatabaseUnavailableError,
 * never a raw driver error, and work again once the server is back.
 *
 * A private PostgreSQL on a spare port (test/support/servers.ts), so that restarting it
 * disturbs nothing else. Needs the PostgreSQL binaries, hence TROUPE_TEST_DATABASE_URL as
 * the switch (PGlite cannot be restarted or have its connections killed).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as api from "../src/index.js";
import { Troupe, TroupeError, actor, createServer } from "../src/index.js";
import { Child } from "./fixtures/mw-child.js";
import { REDIS_URL, eventually, freshSchema, needsPostgres } from "./helpers.js";
import { isConnectionError, mapDatabaseError } from "../src/storage/db-errors.js";
import { PgDatabase } from "../src/storage/pg-database.js";
import { freePort, startPrivatePostgres, type PrivatePostgres } from "./support/servers.js";
import { databaseOf } from "./support/internals.js";

const LOOPERS = 20;

/** What a call rejected with; undefined if it resolved. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err;
  }
}

function assertUnavailable(err: unknown, what: string): void {
  const shown =
    err instanceof Error
      ? `${err.name} ${String((err as { code?: unknown }).code)}: ${err.message}`
      : String(err);
  assert.ok(err instanceof TroupeError, `${what}: expected a TroupeError, got ${shown}`);
  assert.equal(err.code, "DATABASE_UNAVAILABLE", `${what}: ${shown}`);
  const cls = (api as Record<string, unknown>).DatabaseUnavailableError as (new () => unknown) | undefined;
  assert.ok(cls && err instanceof cls, `${what}: not a DatabaseUnavailableError`);
  assert.equal((err as { retryable?: unknown }).retryable, true, `${what}: not retryable`);
  assert.ok((err as { cause?: unknown }).cause !== undefined, `${what}: no cause`);
}

describe("database errors are classified", () => {
  test("a server nobody listens on: start() rejects with DatabaseUnavailableError (ECONNREFUSED as cause)", async () => {
    const port = await freePort();
    const t = new Troupe({ database: `postgres://postgres@127.0.0.1:${port}/postgres`, logger: () => {} });
    const err = await rejection(t.start());
    assertUnavailable(err, "start");
    const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
    assert.ok(
      cause?.code === "ECONNREFUSED" || cause?.errors?.every((e) => e.code === "ECONNREFUSED"),
      `cause: ${JSON.stringify(cause)}`,
    );
    await t.stop();
  });

  test("connection failures are retryable, statement errors are not", () => {
    const connection = [
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
      Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
      Object.assign(new Error("write EPIPE"), { code: "EPIPE" }),
      Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }),
      Object.assign(new Error("the database system is starting up"), { code: "57P03" }),
      Object.assign(new Error("sorry, too many clients already"), { code: "53300" }),
      Object.assign(new Error("connection failure"), { code: "08006" }),
      new Error("Connection terminated unexpectedly"),
      new Error("timeout exceeded when trying to connect"),
      new Error("Query read timeout"), // no reply within statementTimeout (a half-open connection)
    ];
    for (const e of connection) assert.ok(isConnectionError(e), e.message);
    const statement = [
      Object.assign(new Error("duplicate key value violates unique constraint"), { code: "23505" }),
      Object.assign(new Error("syntax error at or near"), { code: "42601" }),
      Object.assign(new Error("could not serialize access"), { code: "40001" }),
      Object.assign(new Error("deadlock detected"), { code: "40P01" }),
      Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" }),
      new Error("something else"),
    ];
    for (const e of statement) {
      assert.ok(!isConnectionError(e), e.message);
      assert.equal(mapDatabaseError(e), e);
    }
    const mapped = mapDatabaseError(connection[3]);
    assert.ok(mapped instanceof api.DatabaseUnavailableError);
    assert.equal(mapped.cause, connection[3]);
    assert.equal(mapDatabaseError(mapped), mapped);
  });
});

describe("database faults", { skip: needsPostgres }, () => {
  let server: PrivatePostgres;

  before(async () => {
    server = await startPrivatePostgres();
    await server.admin(`CREATE TABLE public.dbf_control (stop boolean NOT NULL)`);
    await server.admin(`INSERT INTO public.dbf_control VALUES (false)`);
    await server.admin(
      `CREATE TABLE public.dbf_acks (actor_id text NOT NULL, n int NOT NULL, message_id text NOT NULL)`,
    );
  });

  after(() => server?.close());

  test("worker processes ride out killed connections and restarts, then finish correctly", async (t) => {
    const schema = freshSchema("dbf");
    const env = {
      DBF_DATABASE_URL: server.url,
      DBF_SCHEMA: schema,
      DBF_REDIS_URL: REDIS_URL ?? "",
    };
    const workers = [
      new Child("w1", "./db-fault-worker.ts", { ...env, DBF_WORKER_ID: "w1", DBF_SPAWN: String(LOOPERS) }),
      new Child("w2", "./db-fault-worker.ts", { ...env, DBF_WORKER_ID: "w2" }),
    ];
    // A worker: false process calling through the faults: it must not die either.
    let caller: Child | undefined;
    const client = new Troupe({
      database: server.url,
      schema,
      worker: false,
      migrate: false,
      logger: () => {},
    });
    const tails = () => workers.map((w) => w.describe()).join("");
    const assertAlive = (when: string) => {
      for (const w of workers) assert.ok(w.alive, `${w.name} exited ${when}:${w.describe()}`);
    };
    const acks = async () =>
      (await server.admin<{ n: number }>("SELECT count(*)::int AS n FROM public.dbf_acks"))[0]!.n;
    /** New acks after `when`: the actors make progress again (60 = three rounds of the loopers). */
    /** Fails at once if a worker exits while we wait (it must not). */
    const whileAlive = <T>(p: Promise<T>): Promise<T> =>
      Promise.race([
        p.catch((err: Error) => {
          throw new Error(`${err.message}${tails()}`);
        }),
        ...workers.map((w) =>
          w.exited.then(({ code, signal }) => {
            throw new Error(`${w.name} exited (code ${code}, signal ${signal})${w.describe()}`);
          }),
        ),
      ]);
    const progresses = async (when: string) => {
      const base = await whileAlive(
        eventually(async () => ({ n: await acks() }), `the database after ${when}`, 60_000),
      );
      await whileAlive(
        eventually(async () => (await acks()) >= base.n + 3 * LOOPERS, `progress after ${when}`, 90_000),
      );
    };
    try {
      await workers[0]!.waitFor((l) => l.event === "spawned", "spawning the actors", 90_000);
      await workers[1]!.waitFor((l) => l.event === "ready", "the second worker", 90_000);
      await client.start();
      caller = new Child("caller", "./db-fault-worker.ts", {
        ...env,
        DBF_WORKER_ID: "caller",
        DBF_CLIENT: "1",
      });
      workers.push(caller);
      await caller.waitFor((l) => l.event === "ready", "the client process", 90_000);
      await progresses("start");

      const killed = await server.terminateBackends();
      assert.ok(killed > 0, "no troupe connection was terminated");
      await progresses("pg_terminate_backend");
      assertAlive("after pg_terminate_backend");

      await server.restart("fast");
      await progresses("a fast restart");
      assertAlive("after a fast restart");

      await server.restart("immediate");
      await progresses("an immediate restart");
      assertAlive("after an immediate restart");

      // A longer outage: stopped until every worker noticed (and backs off), then started again.
      const mark = workers.map((w) => w.lines.length);
      const noticed = (i: number, text: string) =>
        workers[i]!.lines.slice(mark[i]).some((l) => l.event === "log" && String(l.msg).startsWith(text));
      server.stop("fast");
      try {
        await whileAlive(
          eventually(
            () => noticed(0, "database unavailable") && noticed(1, "database unavailable"),
            "the outage noticed",
          ),
        );
      } finally {
        await server.start();
      }
      await whileAlive(
        eventually(
          () => noticed(0, "database reachable again") && noticed(1, "database reachable again"),
          "every worker to see the database back",
          60_000,
        ),
      );
      await progresses("a stop and start");
      assertAlive("after a stop and start");

      await server.admin("UPDATE public.dbf_control SET stop = true");
      const ids = Array.from({ length: LOOPERS }, (_, i) => `dbf-${i}`);
      const rounds = new Map<string, number>();
      const failed: string[] = [];
      await whileAlive(
        eventually(
          async () => {
            for (const id of ids) {
              if (rounds.has(id)) continue;
              const info = await client.get(id);
              if (
                info &&
                info.status !== "completed" &&
                info.status !== "running" &&
                info.status !== "waiting"
              )
                failed.push(`${id} ${info.status}: ${JSON.stringify(info.error)}`);
              if (failed.length > 0) return true; // no use waiting for the others
              if (info?.status !== "completed") return false;
              rounds.set(id, (info.output as { rounds: number }).rounds);
            }
            return true;
          },
          "every looper to finish",
          120_000,
        ),
      );
      assert.deepEqual(failed, [], "loopers that did not complete");
      const expected = [...rounds.values()].reduce((a, b) => a + b, 0);
      await eventually(async () => (await acks()) >= expected, "the collectors to record every ack", 60_000);
      const rows = await server.admin<{ actor_id: string; n: number; copies: number }>(
        `SELECT actor_id, n, count(*)::int AS copies FROM public.dbf_acks GROUP BY actor_id, n`,
      );
      const dups = rows.filter((r) => r.copies !== 1);
      assert.deepEqual(dups, [], "acks recorded more than once");
      for (const [id, r] of rounds) {
        const got = rows
          .filter((x) => x.actor_id === id)
          .map((x) => x.n)
          .sort((a, b) => a - b);
        assert.deepEqual(
          got,
          Array.from({ length: r }, (_, i) => i),
          `acks of ${id}`,
        );
      }
      assert.equal((await acks()) - expected, 0, "acks of rounds that no looper counted");
      assertAlive("at the end");
      const calls = caller.lines.filter((l) => l.event === "calls").at(-1);
      assert.ok(calls && calls.ok > 0 && calls.unavailable > 0, `client calls: ${JSON.stringify(calls)}`);
      assert.deepEqual(
        caller.lines.filter((l) => l.event === "untyped"),
        [],
        "client failures other than DatabaseUnavailableError",
      );
      // What the workers logged through the faults (for the reader; not asserted).
      const logged = new Map<string, number>();
      for (const w of workers)
        for (const l of w.lines)
          if (l.event === "log") logged.set(String(l.msg), (logged.get(String(l.msg)) ?? 0) + 1);
      t.diagnostic(`rounds per looper: ${[...rounds.values()].join(",")}; acks: ${expected}`);
      t.diagnostic(`worker warnings: ${JSON.stringify(Object.fromEntries(logged))}`);
      t.diagnostic(`client process calls: ${JSON.stringify(calls)}`);
    } finally {
      await client.stop();
      await Promise.all(workers.map((w) => w.kill()));
    }
  });

  test("client calls during an outage reject with DatabaseUnavailableError, and work again after", async () => {
    const schema = freshSchema("dbc");
    const idle = actor("dbc-idle", async (ctx) => {
      await ctx.join("dbc-group");
      await ctx.subscribe("dbc-inbox", "direct");
      return ctx.receive("dbc-inbox");
    });
    const client = new Troupe({
      actors: [idle],
      database: server.url,
      schema,
      worker: false,
      logger: () => {},
    });
    await client.start();
    let http: ReturnType<typeof createServer> | undefined;
    try {
      const ref = await client.spawn(idle, {}, { id: "dbc-1" });
      const calls: [string, () => Promise<unknown>][] = [
        ["publish", () => client.publish("dbc-news", { n: 1 })],
        ["send", () => client.send("dbc-1", "dbc-inbox", { n: 1 })],
        ["broadcast", () => client.broadcast("dbc-group", "dbc-inbox", { n: 1 })],
        ["spawn", () => client.spawn(idle, {}, { id: "dbc-2" })],
        ["get", () => client.get("dbc-1")],
        ["list", () => client.list({ actor: "dbc-idle" })],
        ["stats", () => client.stats()],
        ["members", () => client.members("dbc-group")],
        ["groups", () => client.groups()],
        ["status", () => ref.status()],
        ["cancel", () => client.cancel("dbc-1")],
      ];

      const heard: unknown[] = [];
      let unlisten: (() => void) | undefined;
      http = createServer({ troupe: client, port: 0, host: "127.0.0.1" });
      const base = (await http.start()).url;
      const postEvent = (id: string) =>
        fetch(`${base}/events`, {
          method: "POST",
          headers: {
            "ce-specversion": "1.0",
            "ce-id": id,
            "ce-source": "https://db-faults.example",
            "ce-type": "dbc-news",
            "content-type": "application/json",
          },
          body: JSON.stringify({ n: 3 }),
        });
      server.stop("fast");
      try {
        // The HTTP ingress answers 503 DATABASE_UNAVAILABLE: the sender retries.
        const res = await postEvent("evt-1");
        assert.equal(res.status, 503);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, "DATABASE_UNAVAILABLE");
        // Its start position cannot be read now: no unhandled rejection, and it works once the database is back.
        unlisten = client.listen("dbc-news", (m) => void heard.push(m.data));
        for (const [what, call] of calls) assertUnavailable(await rejection(call()), what);
      } finally {
        await server.start();
      }
      // Back by itself: every call works again (cancel last, it ends the actor).
      for (const [what, call] of calls)
        await eventually(
          async () => (await rejection(call())) === undefined,
          `${what} after start()`,
          30_000,
        );
      assert.equal((await client.get("dbc-1"))?.status, "cancelled");
      await eventually(async () => {
        await client.publish("dbc-news", { n: 2 });
        return heard.length > 0;
      }, "the listener started during the outage to hear a message");
      unlisten?.();
      await eventually(async () => (await postEvent("evt-1")).status === 202, "POST /events after start()");

      // Killed connections mid-life: the pool replaces them; a call racing one gets the typed error or works.
      await server.terminateBackends();
      const err = await rejection(client.get("dbc-1"));
      if (err !== undefined) assertUnavailable(err, "get after pg_terminate_backend");
      await eventually(async () => (await client.get("dbc-2"))?.id === "dbc-2", "get after the kill");
    } finally {
      await http?.stop();
      await client.stop();
    }
  });

  test("transactions contending for a small pool survive terminated backends", async () => {
    // A client handed from one user to a waiting transaction while its socket still holds an
    // ErrorMessage: without a listener attached at hand-over the process died (3 runs of 3).
    const db = new PgDatabase(server.url, { poolSize: 3 });
    let stop = false;
    let ok = 0;
    const untyped: unknown[] = [];
    const loops = Array.from({ length: 30 }, async (_, i) => {
      while (!stop) {
        try {
          if (i % 2 === 1)
            await db.transaction(async (tx) => {
              await tx.query("SELECT 1");
              await tx.query("SELECT $1::int AS i", [i]);
            });
          else await db.query("SELECT $1::int AS i", [i]);
          ok++;
        } catch (err) {
          if (!(err instanceof api.DatabaseUnavailableError)) untyped.push(err);
        }
      }
    });
    try {
      let killed = 0;
      for (let round = 0; round < 40; round++) {
        const base = ok;
        await eventually(() => ok >= base + 50, `queries between kills (round ${round})`);
        killed += await server.terminateBackends();
      }
      assert.ok(killed > 0, "no backend was terminated");
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    assert.deepEqual(untyped.map(String), [], "errors other than DatabaseUnavailableError");
    assert.equal((await db.query<{ i: number }>("SELECT 7 AS i")).rows[0]?.i, 7);
    await db.close();
  });

  test(
    "a worker in this process stops gracefully while the database is down",
    { timeout: 120_000 },
    async () => {
      const waiter = actor("dbs-waiter", async (ctx) => {
        await ctx.subscribe("dbs-inbox", "direct");
        return (await ctx.receive("dbs-inbox"))?.data;
      });
      const t = new Troupe({
        actors: [waiter],
        database: server.url,
        schema: freshSchema("dbs"),
        lease: "2s",
        pollInterval: "100ms",
        shutdownTimeout: "2s",
        logger: () => {},
      });
      await t.start();
      let stopped = false;
      try {
        const ref = await t.spawn(waiter, {}, { id: "dbs-1" });
        await eventually(async () => (await ref.status()) === "waiting", "the actor to wait");
        server.stop("immediate");
        try {
          await t.stop(); // every step of the teardown runs; none hangs on the dead server
          stopped = true;
        } finally {
          await server.start();
        }
      } finally {
        if (!stopped) await t.stop();
      }
    },
  );

  test("errors that are not about the connection stay as they are", async () => {
    const client = new Troupe({
      database: server.url,
      schema: freshSchema("dbe"),
      worker: false,
      logger: () => {},
    });
    await client.start();
    try {
      const db = databaseOf(client);
      const division = await rejection(db.query("SELECT 1 / 0"));
      assert.equal((division as { code?: string }).code, "22012");
      const syntax = await rejection(db.transaction((tx) => tx.query("SELEC 1")));
      assert.equal((syntax as { code?: string }).code, "42601");
      const unique = await rejection(
        db.transaction(async (tx) => {
          await tx.query("CREATE TABLE IF NOT EXISTS public.dbe_once (k int PRIMARY KEY)");
          await tx.query("INSERT INTO public.dbe_once VALUES (1), (1)");
        }),
      );
      assert.equal((unique as { code?: string }).code, "23505");
      for (const e of [division, syntax, unique]) assert.ok(!(e instanceof TroupeError), String(e));
    } finally {
      await client.stop();
    }
  });
});
