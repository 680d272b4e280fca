/**
 * Lifecycle operations end to end:
 *  - cancellation from another process, while the actor waits (receive, sleep) or runs a
 *    long step on one of several worker PROCESSES (real Postgres + Redis only);
 *  - schedules started by a running troupe's leader: a cron schedule, and an interval
 *    schedule whose failed / idle / cancelled runs stretch the recorded next-run times;
 *  - the `actorRetention` option applied by the leader loop.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import {
  ActorCancelledError,
  NonRetryableError,
  NotCancellableError,
  actor,
  type ActorContext,
  type Troupe,
  type TroupeError,
} from "../src/index.js";
import type { ScheduleInfo } from "../src/api/types.js";
import { advanceSchedules } from "../src/engine/schedules.js";
import { WorkerProcess as Child } from "./support/worker-processes.js";
import {
  LopsInbox,
  lopsActors,
  lopsFailing,
  lopsLong,
  lopsPlainWaiter,
  lopsQuick,
  lopsSleeper,
  lopsWaiter,
} from "./fixtures/lops-actors.js";
import {
  PG_URL,
  REDIS_URL,
  dropSchema,
  eventually,
  freshSchema,
  needsPostgres,
  restartable,
  testTroupe,
} from "./helpers.js";
import { sqlRows, storageOf } from "./support/internals.js";

const WORKERS = ["lops-w1", "lops-w2"];

describe("cancellation from another process (several worker processes)", { skip: needsPostgres }, () => {
  const schema = freshSchema("lops");
  const children: Child[] = [];
  let db: pg.Pool;
  let client: Troupe; // spawns and cancels; runs nothing (worker: false)
  let other: Troupe; // a second full troupe in this process, with no actor types of its own

  before(async () => {
    db = new pg.Pool({ connectionString: PG_URL, max: 3 });
    await db.query(`CREATE SCHEMA "${schema}"`);
    await db.query(`CREATE TABLE "${schema}".lops_marks (
      id bigserial PRIMARY KEY, actor_id text NOT NULL, what text NOT NULL, worker text NOT NULL)`);
    await db.query(`CREATE TABLE "${schema}".lops_gates (name text PRIMARY KEY)`);
    for (const id of WORKERS) {
      children.push(
        new Child(id, "./lops-worker.ts", {
          LOPS_DATABASE_URL: PG_URL,
          LOPS_REDIS_URL: REDIS_URL ?? "",
          LOPS_SCHEMA: schema,
          LOPS_WORKER_ID: id,
        }),
      );
    }
    await Promise.all(children.map((c) => c.waitFor((l) => l.event === "ready", "ready", 60_000)));
    client = testTroupe({ schema, worker: false, actors: lopsActors });
    await client.start();
    other = testTroupe({ schema, actors: [] });
    await other.start();
  });

  after(async () => {
    await Promise.allSettled([client?.stop(), other?.stop()]);
    for (const c of children) c.signal("SIGTERM");
    await Promise.all(
      children.map((c) =>
        Promise.race([c.exited, new Promise((r) => setTimeout(r, 5000))]).then(() => c.kill()),
      ),
    );
    await db?.end();
    await dropSchema(schema);
  });

  const marks = async (actorId: string): Promise<string[]> =>
    (
      await db.query<{ what: string }>(
        `SELECT what FROM "${schema}".lops_marks WHERE actor_id = $1 ORDER BY id`,
        [actorId],
      )
    ).rows.map((r) => r.what);
  const markWorkers = async (actorId: string): Promise<string[]> =>
    (
      await db.query<{ worker: string }>(
        `SELECT DISTINCT worker FROM "${schema}".lops_marks WHERE actor_id = $1`,
        [actorId],
      )
    ).rows.map((r) => r.worker);
  const row = async (id: string) =>
    (
      await db.query<{
        status: string;
        sticky_worker: string | null;
        wait_seq: number | null;
        lease_owner: string | null;
      }>(`SELECT status, sticky_worker, wait_seq, lease_owner FROM "${schema}".actors WHERE id = $1`, [id])
    ).rows[0];
  const count = async (sql: string, id: string) =>
    Number((await db.query<{ n: string }>(sql.replaceAll("{s}", `"${schema}"`), [id])).rows[0]!.n);
  const waitingSubscriptions = (id: string) =>
    count("SELECT count(*) AS n FROM {s}.subscriptions WHERE actor_id = $1 AND wait_seq IS NOT NULL", id);
  const subscriptions = (id: string) =>
    count("SELECT count(*) AS n FROM {s}.subscriptions WHERE actor_id = $1", id);
  const timers = (id: string) => count("SELECT count(*) AS n FROM {s}.timers WHERE actor_id = $1", id);

  /** Waits until the actor is parked (waiting) in the memory of one of the worker processes. */
  async function parkedOnAWorker(id: string): Promise<string> {
    return (await eventually(async () => {
      const r = await row(id);
      return r?.status === "waiting" && r.sticky_worker && WORKERS.includes(r.sticky_worker)
        ? r.sticky_worker
        : null;
    }, `${id} waiting on a worker process`)) as string;
  }

  test("(a) cancel while waiting on receive: compensations run, wait cleared, groups left, reason kept", async () => {
    const a = await client.spawn(lopsWaiter, {}, { id: "lops-a-waiter" });
    const probe = await client.spawn(lopsWaiter, {}, { id: "lops-a-probe" });
    const plain = await client.spawn(lopsPlainWaiter, {}, { id: "lops-a-plain" });
    await Promise.all([a.id, probe.id, plain.id].map((id) => parkedOnAWorker(id)));
    assert.deepEqual(await client.members("lops-waiters"), ["lops-a-probe", "lops-a-waiter"]);
    assert.deepEqual(await client.members("lops-plain"), ["lops-a-plain"]);

    await client.cancel(a.id, "customer left");
    // In the cancel call: the wait is cleared (it has compensations, so a worker finishes it).
    const now = await row(a.id);
    assert.ok(now?.status === "compensating" || now?.status === "cancelled", `status ${now?.status}`);
    assert.equal(now.wait_seq, null, "the actor's wait position is cleared");
    assert.equal(await waitingSubscriptions(a.id), 0, "no subscription waits for it any more");

    await assert.rejects(
      a.result({ timeout: "30s" }),
      (e: unknown) => e instanceof ActorCancelledError && e.reason === "customer left",
    );
    const info = await client.get(a.id);
    assert.equal(info?.status, "cancelled");
    assert.equal(info?.error?.code, "CANCELLED");
    assert.equal(info?.error?.message, "customer left");
    assert.ok(info?.finishedAt);
    assert.deepEqual(await marks(a.id), ["do hold", "undo hold"], "the compensation ran once");
    assert.ok(
      (await markWorkers(a.id)).every((w) => WORKERS.includes(w)),
      "it ran on the worker processes",
    );
    assert.deepEqual(await client.members("lops-waiters"), ["lops-a-probe"], "it left its group");
    assert.equal(await subscriptions(a.id), 0);

    // Without compensations the cancel call itself finishes it: nothing left to wait for.
    await client.cancel(plain.id, "not needed");
    const p = await client.get(plain.id);
    assert.equal(p?.status, "cancelled");
    assert.equal(p?.error?.message, "not needed");
    assert.deepEqual(await client.members("lops-plain"), []);
    assert.equal(await subscriptions(plain.id), 0);

    // No later message resumes them: messages to the cancelled ones are accepted and never read,
    // while the probe (sent to afterwards, parked on the same worker processes) receives its own.
    await client.send(a.id, LopsInbox, "late");
    await client.send(plain.id, LopsInbox, "late");
    await client.send(probe.id, LopsInbox, "hello probe");
    assert.equal(await probe.result({ timeout: "30s" }), "hello probe");
    assert.deepEqual(await marks(probe.id), ["do hold", "received hello probe"]);
    for (const id of [a.id, plain.id]) {
      assert.equal((await client.get(id))?.status, "cancelled");
      assert.ok(!(await marks(id)).some((m) => m.startsWith("received")), `${id} was resumed`);
      assert.equal(
        await count(
          "SELECT count(*) AS n FROM {s}.messages WHERE direct_to = $1 AND claimed_by IS NOT NULL",
          id,
        ),
        0,
        `${id}'s late message was claimed`,
      );
      assert.equal(
        await count("SELECT count(*) AS n FROM {s}.journal WHERE actor_id = $1 AND kind = 'receive'", id),
        0,
        `${id} journaled a receive`,
      );
    }
  });

  test("(b) cancel while sleeping, from another troupe: timer removed, compensation runs, groups left", async () => {
    const s = await client.spawn(lopsSleeper, { book: true }, { id: "lops-b-sleeper" });
    const bare = await client.spawn(lopsSleeper, { book: false }, { id: "lops-b-bare" });
    await Promise.all([s.id, bare.id].map((id) => parkedOnAWorker(id)));
    assert.equal(await timers(s.id), 1, "the sleep is a durable timer");
    assert.deepEqual(await client.members("lops-sleepers"), ["lops-b-bare", "lops-b-sleeper"]);

    await other.cancel(s.id, "trip called off");
    assert.equal(await timers(s.id), 0, "the timer is removed in the cancel call");
    assert.equal((await row(s.id))?.wait_seq, null);
    await assert.rejects(
      client.ref(s.id).result({ timeout: "30s" }),
      (e: unknown) => e instanceof ActorCancelledError && e.reason === "trip called off",
    );
    const info = await other.get(s.id);
    assert.equal(info?.status, "cancelled");
    assert.equal(info?.error?.message, "trip called off");
    assert.deepEqual(await marks(s.id), ["do book", "undo book"]);
    assert.deepEqual(await client.members("lops-sleepers"), ["lops-b-bare"]);

    await other.cancel(bare.id); // no compensations: finished in the call, no reason given
    const b = await client.get(bare.id);
    assert.equal(b?.status, "cancelled");
    assert.equal(b?.error?.code, "CANCELLED");
    assert.equal(await timers(bare.id), 0);
    assert.deepEqual(await client.members("lops-sleepers"), []);
    assert.deepEqual(await marks(bare.id), []);
  });

  test("(c) cancel while a long step runs on a worker process: the step finishes (signal not aborted), nothing after it runs, all compensations run", async () => {
    const gate = "lops-c-gate";
    const ref = await client.spawn(lopsLong, { gate }, { id: "lops-c-long" });
    await eventually(async () => (await marks(ref.id)).includes("long started"), "the long step running");
    const worker = (await row(ref.id))?.lease_owner;
    assert.ok(worker && WORKERS.includes(worker), `running on a worker process (${worker})`);

    await client.cancel(ref.id, "deadline passed");
    await client.cancel(ref.id, "second reason"); // a request is pending already: no error, no change
    // The worker hears the request (wakeup or heartbeat) and starts compensating once the step
    // in progress is done; the step itself keeps running: nothing aborted it.
    await eventually(
      async () => (await row(ref.id))?.status === "compensating",
      "the worker heard the cancel",
    );
    assert.deepEqual(await marks(ref.id), ["do book", "long started"], "the step was not interrupted");
    assert.equal(
      (await row(ref.id))?.lease_owner,
      worker,
      "the worker running the step still holds the actor",
    );

    await db.query(`INSERT INTO "${schema}".lops_gates (name) VALUES ($1)`, [gate]);
    await assert.rejects(
      ref.result({ timeout: "30s" }),
      (e: unknown) => e instanceof ActorCancelledError && e.reason === "deadline passed",
    );
    assert.deepEqual(await marks(ref.id), [
      "do book",
      "long started",
      "long finished (aborted: false)",
      "undo long call-1", // registered by the step that was running when the cancel came
      "undo book",
    ]);
    const journal = (
      await db.query<{ name: string }>(
        `SELECT name FROM "${schema}".journal WHERE actor_id = $1 AND kind = 'step' ORDER BY seq`,
        [ref.id],
      )
    ).rows.map((r) => r.name);
    assert.deepEqual(journal, ["book", "long call"], "the running step was journaled, nothing after it");
    const info = await client.get(ref.id);
    assert.equal(info?.status, "cancelled");
    assert.equal(info?.error?.message, "deadline passed");
  });

  test("(d) finished actors: completed and failed are NOT_CANCELLABLE, a cancelled one is a no-op", async () => {
    const done = await client.spawn(lopsQuick, {}, { id: "lops-d-done" });
    assert.equal(await done.result({ timeout: "30s" }), "done");
    const failed = await client.spawn(lopsFailing, {}, { id: "lops-d-failed" });
    await assert.rejects(failed.result({ timeout: "30s" }), (e: TroupeError) => e.code === "ACTOR_FAILED");
    for (const [id, status] of [
      [done.id, "completed"],
      [failed.id, "failed"],
    ] as const) {
      const before = await client.get(id);
      await assert.rejects(
        client.cancel(id, "too late"),
        (e: unknown) =>
          e instanceof NotCancellableError &&
          e.code === "NOT_CANCELLABLE" &&
          e.actorId === id &&
          e.status === status,
      );
      assert.deepEqual(await client.get(id), before, `${id} is unchanged`);
    }

    const c = await client.spawn(lopsSleeper, { book: true }, { id: "lops-d-cancelled" });
    await parkedOnAWorker(c.id);
    await client.cancel(c.id, "first");
    await assert.rejects(c.result({ timeout: "30s" }), (e: TroupeError) => e.code === "CANCELLED");
    const first = await client.get(c.id);
    await client.cancel(c.id, "second"); // from the test's client
    await other.cancel(c.id); // and from another troupe
    await c.cancel("third");
    assert.deepEqual(await client.get(c.id), first, "cancelling again changes nothing");
    assert.equal(first?.error?.message, "first");
    assert.deepEqual(await marks(c.id), ["do book", "undo book"], "the compensation ran once");
  });
});

// ---- schedules --------------------------------------------------------------------------

/**
 * What each run of the "lops-flaky" schedule does, by its run number (ids are <name>#<n>):
 * 1, 2 fail; 3 reports no work; 4 waits until the test cancels it; 5 does work; 6+ stay in
 * progress (sleep), so the interval planned after run 5 stays visible.
 */
const flaky = actor("lops-flaky", async (ctx: ActorContext) => {
  const n = Number(ctx.id.slice(ctx.id.lastIndexOf("#") + 1));
  if (n <= 2)
    await ctx.step("work", () => {
      throw new NonRetryableError(`run ${n} fails`);
    });
  if (n === 3) return { idle: true };
  if (n === 4) {
    await ctx.subscribe("lops-hold", "direct");
    await ctx.receive("lops-hold");
  }
  if (n >= 6) await ctx.sleep("1h");
  return { handled: n };
});

const cronRun = actor("lops-cron-run", async (ctx: ActorContext) => {
  await ctx.step("look", () => "nothing");
  return { idle: true }; // reports no work: a cron schedule does not back off
});

describe("schedules end to end", () => {
  const t = testTroupe({ actors: [flaky, cronRun], pollInterval: "50ms" });
  after(() => t.stop());
  const info = async (name: string): Promise<ScheduleInfo> =>
    (await t.schedules()).find((s) => s.name === name)!;

  test("interval: failed, idle and cancelled runs stretch the recorded interval (capped); a run with work resets it", async () => {
    await t.start();
    const name = "lops-flaky-sched";
    const every = 200;
    const max = 2000;
    const s0 = await t.schedule(name, { actor: flaky, every, backoffFactor: 3, maxInterval: max });
    assert.equal(s0.everyMs, every);
    assert.equal(s0.currentIntervalMs, every);
    assert.ok(s0.nextRunAt, "the first run is planned at once");

    // Watch the schedule: after run k ended, the leader records the next run (nextRunAt set,
    // lastRun = run k) and the interval it used.
    const planned = new Map<string, { interval: number | null; nextRunAt: Date }>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const s = await info(name);
        if (s.nextRunAt && s.lastRun && !planned.has(s.lastRun))
          planned.set(s.lastRun, { interval: s.currentIntervalMs, nextRunAt: s.nextRunAt });
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      const run = (n: number) => `${name}#${n}`;
      await eventually(async () => (await t.get(run(4)))?.status === "waiting", "run 4 waiting", 60_000);
      await t.cancel(run(4), "stuck");
      await eventually(async () => (await t.get(run(6)))?.status === "waiting", "run 6 in progress", 60_000);
      assert.equal((await info(name)).currentIntervalMs, every, "run 5 did work: back to `every`");
      assert.equal((await info(name)).nextRunAt, null, "no next run while one is in progress");
      assert.equal((await info(name)).lastRun, run(6));
    } finally {
      watching = false;
      await watcher;
    }

    const runs = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => t.get(`${name}#${n}`)));
    assert.deepEqual(
      runs.map((r) => r?.status),
      ["failed", "failed", "completed", "cancelled", "completed", "waiting"],
    );
    // Interval recorded after each run: ×3 after a failure, an idle run or a cancel, capped at max.
    const expected = [3 * every, 9 * every, max, max, every];
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => planned.get(`${name}#${n}`)?.interval),
      expected.slice(0, 4),
      `intervals planned: ${JSON.stringify([...planned])}`,
    );
    for (let n = 1; n <= 5; n++) {
      const ended = runs[n - 1]!.finishedAt!;
      const next = runs[n]!.startedAt;
      const plan = planned.get(`${name}#${n}`);
      if (plan) {
        // The recorded next run is an interval after the run ended; the next run did not start before it.
        assert.ok(
          plan.nextRunAt.getTime() - ended.getTime() >= expected[n - 1]!,
          `run ${n + 1} planned ${plan.nextRunAt.getTime() - ended.getTime()} ms after run ${n} ended`,
        );
        assert.ok(next.getTime() >= plan.nextRunAt.getTime(), `run ${n + 1} started before its planned time`);
      } else assert.equal(n, 5, `the plan after run ${n} was not observed`); // only run 5's is short-lived
      assert.ok(
        next.getTime() - ended.getTime() >= expected[n - 1]!,
        `run ${n + 1} started ${next.getTime() - ended.getTime()} ms after run ${n} ended`,
      );
    }
    await t.unschedule(name);
    await t.cancel(`${name}#6`);
  });

  test("cron: the leader starts runs at matching minutes (UTC); a run reporting no work does not back off", async () => {
    await t.start();
    // Without startAt, the first run is the next matching time.
    const yearly = await t.schedule("lops-new-year", { actor: cronRun, cron: "0 0 1 1 *" });
    const nextYear = new Date(Date.UTC(new Date().getUTCFullYear() + 1, 0, 1));
    assert.equal(yearly.nextRunAt?.toISOString(), nextYear.toISOString());
    assert.equal(yearly.everyMs, null);
    assert.equal(yearly.cron, "0 0 1 1 *");
    assert.equal((await info("lops-new-year")).nextRunAt?.toISOString(), nextYear.toISOString());
    await t.unschedule("lops-new-year");

    // Every minute; the first run now (startAt), the next ones at the following minutes.
    const name = "lops-every-minute";
    await t.schedule(name, { actor: cronRun, cron: "* * * * *", startAt: new Date() });
    // The row as the leader left it after planning: the next run, and when it planned it.
    const planned = async (n: number) =>
      (await eventually(async () => {
        const rows = await sqlRows<{ next: string | Date; at: string | Date }>(
          t,
          `SELECT next_run_at AS next, updated_at AS at FROM {schema}.schedules
                           WHERE name = $1 AND last_actor_id = $2 AND next_run_at IS NOT NULL`,
          [name, `${name}#${n}`],
        );
        return rows[0]
          ? { next: new Date(rows[0].next).getTime(), at: new Date(rows[0].at).getTime() }
          : null;
      }, `the run after #${n} planned`))!;
    const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;
    for (const n of [1, 2]) {
      const { next, at } = await planned(n); // `at`: when the leader planned it (database clock)
      const run = (await t.get(`${name}#${n}`))!;
      assert.equal(run.status, "completed");
      assert.deepEqual(run.output, { idle: true });
      const ended = run.finishedAt!.getTime();
      assert.ok(at >= ended && next > ended, "planned after the run ended, for later");
      assert.equal(
        minute(next),
        minute(at) + 60_000,
        `next run ${new Date(next).toISOString()}: the first matching minute after ${new Date(at).toISOString()}`,
      );
      const s = await info(name);
      if (s.lastRun === `${name}#${n}`) {
        assert.equal(s.nextRunAt?.getTime(), next, "schedules() shows the planned run");
        assert.equal(s.currentIntervalMs, null, "no interval, no backoff for cron");
      }
      if (n === 1) {
        // The leader starts it at that minute: a second run exists, started no earlier.
        const second = (await eventually(
          () => t.get(`${name}#2`),
          "the cron run at the next minute",
          90_000,
        ))!;
        assert.ok(second.startedAt.getTime() >= next, "run 2 started at (or after) its minute");
      }
    }
    await t.unschedule(name);
  });
});

describe("cron planning", () => {
  const t = testTroupe({ actors: [cronRun], worker: false }); // no leader loop: the test drives it
  after(() => t.stop());

  test("the next cron run is planned at the matching minute, however long the leader takes to write it", async () => {
    await t.start();
    const storage = storageOf(t);
    const name = "lops-cron-plan";
    await t.schedule(name, { actor: cronRun, cron: "* * * * *", startAt: new Date() });
    assert.deepEqual(await advanceSchedules(storage), [`${name}#1`], "the leader's tick starts run 1");
    await t.cancel(`${name}#1`); // the run is over (nothing runs it here)
    // The next tick plans run 2; its write reaches the database 250 ms after the leader
    // computed the time (a busy pool, a slow network, a loaded event loop).
    const slow = {
      schedules: {
        startDue: (limit: number) => storage.schedules.startDue(limit),
        finishedRuns: (limit: number) => storage.schedules.finishedRuns(limit),
        setNext: async (...args: Parameters<typeof storage.schedules.setNext>) => {
          await new Promise((r) => setTimeout(r, 250));
          return storage.schedules.setNext(...args);
        },
      },
    } as unknown as typeof storage;
    assert.deepEqual(await advanceSchedules(slow), []);
    const next = (await t.schedules()).find((s) => s.name === name)!.nextRunAt!;
    assert.ok(next, "run 2 is planned");
    // "the next run is the first matching minute after the previous run ended" (docs/api.md)
    assert.equal(next.getTime() % 60_000, 0, `run 2 planned at ${next.toISOString()}, not on a minute`);
  });
});

// ---- actorRetention -------------------------------------------------------------------

const retQuick = actor("lops-ret-quick", async () => "done");
const retFailing = actor("lops-ret-failing", async () => {
  throw new Error("boom");
});
const retSaga = actor("lops-ret-saga", async (ctx: ActorContext) => {
  await ctx.step("book", () => "b-1", { compensate: () => {} });
  await ctx.sleep("1h");
  return "unreachable";
});

describe("actorRetention", () => {
  test("the leader deletes finished actors older than the retention, keeping unfinished and newer ones", async () => {
    const db = await restartable({ actors: [retQuick, retFailing, retSaga] });
    const sql = async (t: Troupe, q: string, params: unknown[] = []) =>
      await sqlRows<Record<string, any>>(t, q, params);
    try {
      // First life: no retention. Old finished actors (all three final statuses), unfinished
      // ones (waiting, and waiting with a compensation), and newer finished ones.
      const a = db.make();
      await a.start();
      const oldDone = await a.spawn(retQuick, {}, { id: "old-done", idempotencyKey: "old-key" });
      const oldFailed = await a.spawn(retFailing, {}, { id: "old-failed" });
      const oldCancelled = await a.spawn(retSaga, {}, { id: "old-cancelled" });
      const waiting = await a.spawn(retSaga, {}, { id: "still-waiting" });
      const newDone = await a.spawn(retQuick, {}, { id: "new-done" });
      const newFailed = await a.spawn(retFailing, {}, { id: "new-failed" });
      await oldDone.result({ timeout: "30s" });
      await newDone.result({ timeout: "30s" });
      await assert.rejects(oldFailed.result({ timeout: "30s" }));
      await assert.rejects(newFailed.result({ timeout: "30s" }));
      await eventually(
        async () =>
          (await a.get(oldCancelled.id))?.status === "waiting" &&
          (await a.get(waiting.id))?.status === "waiting",
        "sagas waiting",
      );
      await oldCancelled.cancel("old");
      await assert.rejects(
        oldCancelled.result({ timeout: "30s" }),
        (e: TroupeError) => e.code === "CANCELLED",
      );
      // Age the "old" ones (and the unfinished one) by two hours; the retention is one hour.
      await sql(
        a,
        `UPDATE {schema}.actors SET finished_at = finished_at - interval '2 hours',
                started_at = started_at - interval '2 hours', updated_at = updated_at - interval '2 hours'
          WHERE id IN ('old-done', 'old-failed', 'old-cancelled', 'still-waiting')`,
      );
      const journalOf = async (t: Troupe, id: string) =>
        Number(
          (await sql(t, "SELECT count(*)::int AS n FROM {schema}.journal WHERE actor_id = $1", [id]))[0]!.n,
        );
      assert.ok((await journalOf(a, "old-cancelled")) > 0);
      await a.stop();

      // Second life with actorRetention: its leader loop removes the old finished ones.
      const b = db.make({ actorRetention: "1h" });
      await b.start();
      try {
        await eventually(async () => (await b.get("old-done")) === null, "old finished actors deleted");
        for (const id of ["old-done", "old-failed", "old-cancelled"]) {
          assert.equal(await b.get(id), null, `${id} deleted`);
          assert.equal(await journalOf(b, id), 0, `${id}'s journal deleted`);
        }
        const left = async (table: string) =>
          Number(
            (
              await sql(
                b,
                `SELECT count(*)::int AS n FROM {schema}.${table} WHERE actor_id = 'old-cancelled'`,
              )
            )[0]!.n,
          );
        assert.equal(await left("compensations"), 0, "compensations deleted");
        // Kept: newer finished ones and the unfinished one, however old.
        assert.equal((await b.get("new-done"))?.status, "completed");
        assert.equal((await b.get("new-failed"))?.status, "failed");
        assert.equal((await b.get("still-waiting"))?.status, "waiting");
        assert.ok((await journalOf(b, "still-waiting")) > 0);
        assert.equal(
          Number(
            (
              await sql(b, "SELECT count(*)::int AS n FROM {schema}.timers WHERE actor_id = 'still-waiting'")
            )[0]!.n,
          ),
          1,
          "its timer is kept",
        );
        // The deleted actor's id and idempotency key are free again.
        const again = await b.spawn(retQuick, {}, { id: "fresh-id", idempotencyKey: "old-key" });
        assert.equal(again.id, "fresh-id");
        assert.equal(await again.result({ timeout: "30s" }), "done");
      } finally {
        await b.stop();
      }
    } finally {
      await db.cleanup();
    }
  });
});
