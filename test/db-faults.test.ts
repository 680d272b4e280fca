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
import { Troupe, TroupeError, actor } from "../src/index.js";
import { Child } from "./fixtures/mw-child.js";
import { REDIS_URL, eventually, freshSchema, needsPostgres } from "./helpers.js";
import { startPrivatePostgres, type PrivatePostgres } from "./support/servers.js";

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

  test("worker processes ride out killed connections and restarts, then finish correctly", async () => {
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

      await server.admin("UPDATE public.dbf_control SET stop = true");
      const ids = Array.from({ length: LOOPERS }, (_, i) => `dbf-${i}`);
      const rounds = new Map<string, number>();
      await whileAlive(
        eventually(
          async () => {
            for (const id of ids) {
              if (rounds.has(id)) continue;
              const info = await client.get(id);
              if (info?.status === "failed") throw new Error(`${id} failed: ${JSON.stringify(info.error)}`);
              if (info?.status !== "completed") return false;
              rounds.set(id, (info.output as { rounds: number }).rounds);
            }
            return true;
          },
          "every looper to finish",
          120_000,
        ),
      );
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

      server.stop("fast");
      try {
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

      // Killed connections mid-life: the pool replaces them; a call racing one gets the typed error or works.
      await server.terminateBackends();
      const err = await rejection(client.get("dbc-1"));
      if (err !== undefined) assertUnavailable(err, "get after pg_terminate_backend");
      await eventually(async () => (await client.get("dbc-2"))?.id === "dbc-2", "get after the kill");
    } finally {
      await client.stop();
    }
  });

  test("errors that are not about the connection stay as they are", async () => {
    const client = new Troupe({
      database: server.url,
      schema: freshSchema("dbe"),
      worker: false,
      logger: () => {},
    });
    await client.start();
    try {
      const db = client._storage.db;
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
