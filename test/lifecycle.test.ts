import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ActorCancelledError, actor, type ActorContext, type TroupeError } from "../src/index.js";
import { setDebugPoint } from "../src/internal/debug-points.js";
import { ledgerSaga, saga, slowStep } from "./fixtures/saga-actors.js";
import { PG_URL, REDIS_URL, eventually, needsPostgres, restartable, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), "troupe-saga-"))));
after(() => rm(dir, { recursive: true, force: true }));
const lines = async (file: string) =>
  (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);

const waiterWithSaga = actor("waiter-saga", async (ctx: ActorContext, input: { file: string }) => {
  await ctx.join("waiters");
  await ctx.subscribe("never", "competing");
  await ctx.step("hold seat", () => {}, {
    compensate: async () => void (await writeFile(input.file, "released seat\n", { flag: "a" })),
  });
  await ctx.receive("never");
  return "unreachable";
});

const sleeper = actor("sleeper", async (ctx: ActorContext) => {
  await ctx.join("sleepers");
  await ctx.sleep("1h");
  return "unreachable";
});

const quick = actor("quick", async () => "done");

const counter = actor("counter", async (ctx: ActorContext, input: { n: number; until: number }) => {
  if (input.n === input.until) return { n: input.n, id: ctx.id };
  await ctx.step("count", () => input.n);
  return ctx.recur({ n: input.n + 1, until: input.until });
});

/** Subscribes in generation 0 only, then handles one broadcast message per generation. */
const ticker = actor(
  "ticker",
  async (ctx: ActorContext, input: { sum: number; left: number; subscribed?: boolean }) => {
    if (!input.subscribed) {
      await ctx.subscribe("ticks", "broadcast");
      await ctx.join("tickers");
    }
    if (input.left === 0) return input.sum;
    const m = await ctx.receive<number>("ticks", { timeout: "30s" });
    if (!m) return -1;
    return ctx.recur({ sum: input.sum + m.data, left: input.left - 1, subscribed: true });
  },
);

/** A transactional step with a compensation, then a plain one, then a failure. */
const txSaga = actor("tx-saga", async (ctx: ActorContext, input: { table: string; file: string }) => {
  await ctx.transaction(
    "reserve",
    async (tx) => {
      await tx.query(`INSERT INTO ${input.table} (what) VALUES ('reserved')`);
      return "r-1";
    },
    {
      compensate: async (reservation: string) =>
        void (await writeFile(input.file, `undo ${reservation}\n`, { flag: "a" })),
    },
  );
  await ctx.step("charge", () => writeFile(input.file, "charge\n", { flag: "a" }), {
    compensate: async () => void (await writeFile(input.file, "refund\n", { flag: "a" })),
  });
  throw new Error("shipping unavailable");
});

describe("sagas and cancellation", () => {
  const t = testTroupe({ actors: [saga, slowStep, waiterWithSaga, sleeper, quick, counter, ticker, txSaga] });
  after(() => t.stop());

  test("a failure runs the compensations newest first, each once, and the actor ends failed", async () => {
    await t.start();
    const file = join(dir, "order.log");
    const ref = await t.spawn(saga, { file });
    const err = await ref
      .result({ timeout: "30s" })
      .catch((e: TroupeError & { error: { message: string } }) => e);
    assert.equal((err as TroupeError).code, "ACTOR_FAILED");
    assert.match((err as unknown as { error: { message: string } }).error.message, /card declined/);
    assert.deepEqual(await lines(file), ["do a", "do b", "do c", "undo c", "undo b", "undo a"]);
    assert.equal((await t.get(ref.id))?.status, "failed");
  });

  test("a transactional step's compensation is registered with its transaction and runs in order", async () => {
    await t.start();
    const file = join(dir, "tx-saga.log");
    const table = `"${storageOf(t).schema}".tx_saga_rows`;
    await databaseOf(t).exec(`CREATE TABLE ${table} (what text NOT NULL)`);
    const ref = await t.spawn(txSaga, { table, file });
    const err = await ref.result({ timeout: "30s" }).catch((e: unknown) => e);
    assert.equal((err as TroupeError).code, "ACTOR_FAILED");
    assert.deepEqual(await lines(file), ["charge", "refund", "undo r-1"]);
    const { rows } = await databaseOf(t).query<{ n: number }>(
      boundSql(
        t,
        "SELECT count(*)::int AS n FROM {schema}.compensations WHERE actor_id = $1 AND status = 'done'",
      ),
      [ref.id],
    );
    assert.equal(rows[0]!.n, 2, "both compensations recorded as done");
    const effects = await databaseOf(t).query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    assert.equal(effects.rows[0]!.n, 1, "the transactional effect happened once");
    const bad = actor("tx-bad-compensate", async (ctx: ActorContext) =>
      ctx.transaction("x", async () => 1, { compensate: "nope" as never }),
    );
    const failed = await (await t.spawn(bad, {})).result({ timeout: "30s" }).catch((e: unknown) => e);
    assert.equal((failed as { error?: { code: string } }).error?.code, "VALIDATION");
  });

  test("cancel while waiting on receive: compensations run, groups left, status cancelled with the reason", async () => {
    await t.start();
    const file = join(dir, "waiter.log");
    const ref = await t.spawn(waiterWithSaga, { file });
    await eventually(async () => (await t.get(ref.id))?.status === "waiting", "waiting");
    await ref.cancel("customer left");
    const err = await ref.result({ timeout: "30s" }).catch((e: unknown) => e);
    assert.ok(err instanceof ActorCancelledError);
    assert.equal(err.code, "CANCELLED");
    assert.match(err.message, /customer left/);
    assert.deepEqual(await lines(file), ["released seat"]);
    assert.deepEqual(await t.members("waiters"), []);
    const info = await t.get(ref.id);
    assert.equal(info?.status, "cancelled");
    await ref.cancel("again"); // a no-op
    assert.equal((await t.get(ref.id))?.status, "cancelled");
  });

  test("cancel while sleeping clears the timer and finishes at once", async () => {
    await t.start();
    const ref = await t.spawn(sleeper, {});
    await eventually(async () => (await t.get(ref.id))?.status === "waiting", "sleeping");
    await t.cancel(ref.id);
    assert.equal((await t.get(ref.id))?.status, "cancelled");
    const { rows } = await databaseOf(t).query(
      boundSql(t, "SELECT 1 FROM {schema}.timers WHERE actor_id = $1"),
      [ref.id],
    );
    assert.equal(rows.length, 0);
    assert.deepEqual(await t.members("sleepers"), []);
  });

  test("cancel while a step runs: the step finishes, nothing after it runs, compensations run", async () => {
    await t.start();
    const file = join(dir, "slow.log");
    const gate = join(dir, "slow.gate");
    await writeFile(gate, "");
    const ref = await t.spawn(slowStep, { file, gate });
    await eventually(async () => (await lines(file)).includes("long call started"), "step running");
    await ref.cancel("timeout");
    await writeFile(gate, "release");
    await assert.rejects(ref.result({ timeout: "30s" }), (e: TroupeError) => e.code === "CANCELLED");
    assert.deepEqual(await lines(file), ["do book", "long call started", "long call finished", "undo book"]);
  });

  test("bad cancels get typed errors and change nothing", async () => {
    await t.start();
    const ref = await t.spawn(quick, {});
    await ref.result({ timeout: "30s" });
    await assert.rejects(t.cancel(ref.id), (e: TroupeError) => e.code === "NOT_CANCELLABLE");
    assert.equal((await t.get(ref.id))?.status, "completed");
    await assert.rejects(t.cancel("no-such-actor"), (e: TroupeError) => e.code === "NOT_FOUND");
    await assert.rejects(t.cancel(""), (e: TroupeError) => e.code === "VALIDATION");
  });

  test("recur: 100 generations in a chain keep the id, use the new input, and archive each journal", async () => {
    await t.start();
    const ref = await t.spawn(counter, { n: 0, until: 100 }, { id: "counter-1" });
    assert.deepEqual(await ref.result({ timeout: "60s" }), { n: 100, id: "counter-1" });
    const info = await t.get("counter-1");
    assert.equal(info?.generation, 100);
    assert.deepEqual(info?.input, { n: 100, until: 100 });
    const gens = new Map<number, string[]>();
    for await (const e of t.history("counter-1"))
      gens.set(e.generation, [...(gens.get(e.generation) ?? []), `${e.kind}:${JSON.stringify(e.result)}`]);
    assert.equal(gens.size, 100, "generations 0..99 each journaled one step (the 100th returned at once)");
    assert.deepEqual(gens.get(0), ["step:0"]);
    assert.deepEqual(gens.get(99), ["step:99"]);
  });

  test("recur keeps subscriptions and cursors: no broadcast is missed across the boundary", async () => {
    await t.start();
    const ref = await t.spawn(ticker, { sum: 0, left: 30 });
    await eventually(async () => (await t.members("tickers")).length === 1, "subscribed");
    for (let i = 1; i <= 30; i++) await t.publish("ticks", i); // many land while it is between generations
    assert.equal(await ref.result({ timeout: "60s" }), (30 * 31) / 2);
    assert.deepEqual(await t.members("tickers"), [], "left its groups when it finished");
  });
});

describe("sagas across kill -9", () => {
  const children: ChildProcess[] = [];
  after(() => children.forEach((c) => c.kill("SIGKILL")));

  test("a worker killed between two compensations: the others run once each, in order, elsewhere", async () => {
    const db = await restartable();
    const file = join(dir, "killed-saga.log");
    try {
      const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/saga-worker.ts"], {
        env: {
          ...process.env,
          DB: PG_URL ?? (db.make() as unknown as { options: { database: string } }).options.database,
          SCHEMA: (db.make() as unknown as { options: { schema: string } }).options.schema,
          KILL_AT: "compensation:settled",
          KILL_NAME: "reserve c",
          SPAWN_SAGA: "saga-k",
          FILE: file,
          ...(REDIS_URL ? { REDIS: REDIS_URL } : {}),
        },
        stdio: "inherit",
      });
      children.push(child);
      const [, signal] = (await once(child, "exit")) as [number | null, string | null];
      assert.equal(signal, "SIGKILL");
      assert.deepEqual(await lines(file), ["do a", "do b", "do c", "undo c"]);
      const t = db.make({ actors: [saga], lease: "1s" });
      try {
        await t.start();
        await assert.rejects(
          t.ref("saga-k").result({ timeout: "30s" }),
          (e: TroupeError) => e.code === "ACTOR_FAILED",
        );
        assert.deepEqual(await lines(file), ["do a", "do b", "do c", "undo c", "undo b", "undo a"]);
      } finally {
        await t.stop();
      }
    } finally {
      await db.cleanup();
    }
  });

  test("transactional compensations: a kill inside one rolls it back, and each undo row exists exactly once", async () => {
    const db = await restartable();
    const file = join(dir, "ledger-saga.log");
    try {
      const setup = db.make({ actors: [ledgerSaga] });
      await setup.start();
      const schema = storageOf(setup).schema;
      const table = `"${schema}".saga_ledger`;
      await databaseOf(setup).query(`CREATE TABLE ${table} (id serial PRIMARY KEY, note text NOT NULL)`);
      const ledger = async (t: typeof setup) =>
        (await databaseOf(t).query<{ note: string }>(`SELECT note FROM ${table} ORDER BY id`)).rows.map(
          (r) => r.note,
        );
      await setup.stop();
      const run = async (killName: string) => {
        const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/saga-worker.ts"], {
          env: {
            ...process.env,
            DB: PG_URL ?? (db.make() as unknown as { options: { database: string } }).options.database,
            SCHEMA: schema,
            KILL_AT: "compensation:after-fn",
            KILL_NAME: killName,
            SPAWN_LEDGER_SAGA: "ledger-saga-k",
            FILE: file,
            TABLE: table,
            ...(REDIS_URL ? { REDIS: REDIS_URL } : {}),
          },
          stdio: "inherit",
        });
        children.push(child);
        const [, signal] = (await once(child, "exit")) as [number | null, string | null];
        assert.equal(signal, "SIGKILL");
      };
      // Dies inside "reserve b"'s compensation transaction, after its INSERT, before commit.
      await run("reserve b");
      let t = db.make({ actors: [ledgerSaga], worker: false });
      await t.start();
      assert.deepEqual(
        await ledger(t),
        ["do a", "do b", "do c", "undo c"],
        "undo b rolled back with the kill",
      );
      await t.stop();
      // The next worker resumes with b; it dies again after the plain "hold" compensation ran.
      await run("hold");
      t = db.make({ actors: [ledgerSaga], lease: "1s" });
      try {
        await t.start();
        await assert.rejects(
          t.ref("ledger-saga-k").result({ timeout: "30s" }),
          (e: TroupeError) => e.code === "ACTOR_FAILED",
        );
        assert.deepEqual(await ledger(t), ["do a", "do b", "do c", "undo c", "undo b", "undo a"]);
        const undone = await databaseOf(t).query<{ n: number }>(
          boundSql(
            t,
            "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'ledger-saga-undone'",
          ),
        );
        assert.equal(undone.rows[0]!.n, 3, "one message per committed compensation");
        // The plain compensation ran twice (killed before its done mark), with one key.
        const log = await lines(file);
        const holds = log.filter((l) => l.startsWith("undo hold "));
        assert.equal(log[0], "do hold");
        assert.equal(holds.length, 2);
        assert.equal(holds[0], holds[1]);
        assert.equal(holds[0], "undo hold ledger-saga-k:0:0");
      } finally {
        await t.stop();
      }
    } finally {
      await db.cleanup();
    }
  });

  test(
    "cancel from this process while the step runs on another worker",
    { skip: needsPostgres },
    async () => {
      const db = await restartable();
      const file = join(dir, "remote.log");
      const gate = join(dir, "remote.gate");
      await writeFile(gate, "");
      const opts = (db.make() as unknown as { options: { schema: string } }).options;
      const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/saga-worker.ts"], {
        env: { ...process.env, DB: PG_URL!, SCHEMA: opts.schema, ...(REDIS_URL ? { REDIS: REDIS_URL } : {}) },
        stdio: "inherit",
      });
      children.push(child);
      const client = db.make({ worker: false, actors: [slowStep] });
      try {
        await client.start();
        const ref = await client.spawn(slowStep, { file, gate });
        await eventually(
          async () => (await lines(file)).includes("long call started"),
          "step running on the worker",
        );
        await ref.cancel("remote cancel");
        await writeFile(gate, "release");
        await assert.rejects(ref.result({ timeout: "30s" }), (e: TroupeError) => e.code === "CANCELLED");
        assert.deepEqual(await lines(file), [
          "do book",
          "long call started",
          "long call finished",
          "undo book",
        ]);
      } finally {
        child.kill("SIGTERM");
        await client.stop();
        await db.cleanup();
      }
    },
  );
});

describe("cancel racing a wait", () => {
  test("a cancel committed just before the actor registers its wait still cancels it (no stuck waiter)", async () => {
    const file = join(dir, "race.log");
    let fired = false;
    const t: ReturnType<typeof testTroupe> = testTroupe({
      actors: [waiterWithSaga],
    });
    setDebugPoint(t, async (name, info) => {
      if (name !== "wait:before-register" || fired || info.kind !== "receive") return;
      fired = true;
      // Store-level cancel: commits while the worker still holds the lease, and its wakeup is
      // "late" (never sent) — only the wait registration itself can notice it.
      await storageOf(t).cancellation.cancel(info.actorId as string, "raced");
    });
    try {
      await t.start();
      const ref = await t.spawn(waiterWithSaga, { file });
      await assert.rejects(ref.result({ timeout: "30s" }), (e: TroupeError) => e.code === "CANCELLED");
      assert.ok(fired);
      assert.deepEqual(await lines(file), ["released seat"]);
    } finally {
      await t.stop();
    }
  });
});
