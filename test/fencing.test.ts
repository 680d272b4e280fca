/**
 * Fencing across processes: a worker stalled (SIGSTOP) past its lease cannot commit anything
 * for an actor another worker took over, neither a step's journal entry nor a transactional
 * step's effect; and a stalled worker must not hold up the others.
 * Needs TROUPE_TEST_DATABASE_URL (several processes share one real Postgres).
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import pg from "pg";
import { decode } from "../src/codec.js";
import { PG_URL, REDIS_URL, dropSchema, eventually, needsPostgres } from "./helpers.js";
import { EFFECTS_TABLE, SideSchemas } from "./support/side-schema.js";
import { WorkerProcesses, type WorkerLine, type WorkerProcess } from "./support/worker-processes.js";

/** eventually(), typed for checks that return null (or false) until the condition holds. */
const until = <T>(check: () => Promise<T | null | false>, what: string, timeoutMs?: number) =>
  eventually(check, what, timeoutMs) as Promise<T>;

interface ActorState {
  status: string;
  leaseOwner: string | null;
  leaseVersion: number;
  expired: boolean | null;
  output: unknown;
}

describe("fencing: a worker stalled past its lease", { skip: needsPostgres }, () => {
  const workers = new WorkerProcesses();
  const sides = new SideSchemas();

  after(async () => {
    // SIGKILL ends stopped processes too; their connections close and Postgres rolls back their transactions.
    await workers.killAll();
    await sides.close();
  });

  const setup = () => sides.create("fence", [EFFECTS_TABLE, "release (actor_id text PRIMARY KEY)"]);

  function worker(schema: string, id: string, env: Record<string, string> = {}): WorkerProcess {
    return workers.start(id, "./fence-worker.ts", {
      FENCE_DATABASE_URL: PG_URL,
      FENCE_REDIS_URL: REDIS_URL ?? "",
      FENCE_SCHEMA: schema,
      FENCE_WORKER_ID: id,
      ...env,
    });
  }

  async function state(db: pg.Pool, schema: string, id: string): Promise<ActorState> {
    const { rows } = await db.query<{
      status: string;
      lease_owner: string | null;
      lease_version: string;
      expired: boolean | null;
      output: Buffer | null;
    }>(
      `SELECT status, lease_owner, lease_version, lease_expires_at < now() AS expired, output
         FROM "${schema}".actors WHERE id = $1`,
      [id],
    );
    const r = rows[0];
    assert.ok(r, `actor ${id} exists`);
    return {
      status: r.status,
      leaseOwner: r.lease_owner,
      leaseVersion: Number(r.lease_version),
      expired: r.expired,
      output: r.output ? decode(r.output) : undefined,
    };
  }

  /** The actor's state once it completed (within 30 s). */
  const completed = (db: pg.Pool, schema: string, id: string, what: string) =>
    until<ActorState>(
      async () => {
        const s = await state(db, schema, id);
        return s.status === "completed" ? s : null;
      },
      what,
      30_000,
    );

  async function journal(
    db: pg.Pool,
    schema: string,
    id: string,
  ): Promise<[number, string, string, unknown][]> {
    const { rows } = await db.query<{ seq: number; kind: string; name: string; result: Buffer | null }>(
      `SELECT seq, kind, name, result FROM "${schema}".journal WHERE actor_id = $1 ORDER BY seq`,
      [id],
    );
    return rows.map((r) => [r.seq, r.kind, r.name, r.result ? decode(r.result) : null]);
  }

  async function effects(db: pg.Pool, schema: string, id: string): Promise<string[]> {
    const { rows } = await db.query<{ worker: string }>(
      `SELECT worker FROM "${schema}".effects WHERE actor_id = $1 ORDER BY at`,
      [id],
    );
    return rows.map((r) => r.worker);
  }

  const release = (db: pg.Pool, schema: string, id: string) =>
    db.query(`INSERT INTO "${schema}".release (actor_id) VALUES ($1)`, [id]);

  /** The fields of a fixture's "log" line (troupe's log call, passed through). */
  const logFields = (l: WorkerLine) => (l.fields ?? {}) as Record<string, unknown>;
  const abandoned = (id: string) => (l: WorkerLine) =>
    l.event === "log" && l.msg === "execution abandoned" && logFields(l).actorId === id;

  /** A stalls in the actor's stall point; returns A's lease version, after A is SIGSTOPped. */
  async function stallAndStop(db: pg.Pool, schema: string, a: WorkerProcess, id: string): Promise<number> {
    await a.waitFor((l) => l.event === "stalling" && l.actorId === id, `${id} stalling on A`);
    const before = await state(db, schema, id);
    assert.equal(before.leaseOwner, a.name);
    a.signal("SIGSTOP");
    return before.leaseVersion;
  }

  test(
    "its step's journal write is fenced off after another worker took over and completed the actor",
    { timeout: 90_000 },
    async () => {
      const { schema, db } = await setup();
      const id = "s1";
      const a = worker(schema, "A", { FENCE_SPAWN: `fence-step:${id}` });
      const versionA = await stallAndStop(db, schema, a, id); // A is inside step "stall"
      await release(db, schema, id); // A is frozen: only B sees it
      const b = worker(schema, "B");

      const done = await completed(db, schema, id, "B to take over and complete the actor");
      assert.ok(done.leaseVersion > versionA, "B claimed the actor under a new lease version");
      assert.deepEqual(await journal(db, schema, id), [
        [0, "step", "first", "A"],
        [1, "step", "stall", "B"],
        [2, "tx", "effect", "B"],
      ]);

      a.signal("SIGCONT"); // A's step finishes now and tries to journal its result
      const line = await a.waitFor(abandoned(id), "A to abandon the execution", 30_000);
      assert.equal(logFields(line).reason, "lock-lost");

      assert.deepEqual(
        await journal(db, schema, id),
        [
          [0, "step", "first", "A"],
          [1, "step", "stall", "B"],
          [2, "tx", "effect", "B"],
        ],
        "nothing written by A after the takeover",
      );
      assert.deepEqual(await effects(db, schema, id), ["B"]);
      const end = await state(db, schema, id);
      assert.equal(end.status, "completed");
      assert.deepEqual(end.output, { first: "A", stall: "B", effect: "B" });
      assert.equal(end.leaseVersion, done.leaseVersion, "A did not touch the actor after it was fenced off");
      assert.ok(!a.lines.some((l) => l.event === "log" && l.level === "error"), a.describe());
      assert.ok(!b.lines.some((l) => l.event === "log" && l.level === "error"), b.describe());

      await Promise.all([a.kill(), b.kill()]);
      await dropSchema(schema);
    },
  );

  test(
    "its transactional step cannot commit while the worker that took over holds the lease",
    { timeout: 90_000 },
    async () => {
      const { schema, db } = await setup();
      const id = "t1";
      const a = worker(schema, "A", { FENCE_SPAWN: `fence-tx:${id}` });
      const versionA = await stallAndStop(db, schema, a, id); // A waits in actor code, before its transaction
      const b = worker(schema, "B");

      // B takes over: replays "first" (A's) and reaches the same stall point under its own lease.
      await b.waitFor((l) => l.event === "stalling" && l.actorId === id, `${id} stalling on B`, 30_000);
      const taken = await state(db, schema, id);
      assert.equal(taken.leaseOwner, "B");
      assert.ok(taken.leaseVersion > versionA, "B claimed the actor under a new lease version");

      // A wakes up while B holds the lease; both go on to the transactional step.
      a.signal("SIGCONT");
      await release(db, schema, id);
      await a.waitFor((l) => l.event === "before-tx" && l.actorId === id, "A to reach its transaction");
      const line = await a.waitFor(abandoned(id), "A to abandon the execution", 30_000);
      assert.equal(logFields(line).reason, "lock-lost");
      const end = await completed(db, schema, id, "B to complete the actor");

      assert.deepEqual(await effects(db, schema, id), ["B"], "only B's transactional effect committed");
      assert.deepEqual(await journal(db, schema, id), [
        [0, "step", "first", "A"],
        [1, "tx", "effect", "B"],
        [2, "step", "last", "B"],
      ]);
      assert.deepEqual(end.output, { first: "A", effect: "B", last: "B" });
      assert.ok(!a.lines.some((l) => l.event === "log" && l.level === "error"), a.describe());
      assert.ok(!b.lines.some((l) => l.event === "log" && l.level === "error"), b.describe());

      await Promise.all([a.kill(), b.kill()]);
      await dropSchema(schema);
    },
  );

  /**
   * Waits until `worker` has renewed the leader lock `ticks` times: its background loop (which
   * announces expired leases) has run that often. A condition, not a clock.
   */
  async function leaderTicks(db: pg.Pool, schema: string, worker: string, ticks: number): Promise<void> {
    const seen = new Set<string>();
    await eventually(
      async () => {
        const { rows } = await db.query<{ owner: string; e: string }>(
          `SELECT owner, expires_at::text AS e FROM "${schema}".system_locks WHERE name = 'leader'`,
        );
        if (rows[0]?.owner === worker) seen.add(rows[0].e);
        return seen.size >= ticks;
      },
      `${worker} to run its background loop ${ticks} times as leader`,
      20_000,
    );
  }

  test(
    "stalled inside a transactional step, it does not stop another worker from running other actors",
    { timeout: 120_000 },
    async () => {
      const { schema, db } = await setup();
      const id = "x1";
      const a = worker(schema, "A", { FENCE_SPAWN: `fence-in-tx:${id}` });
      await stallAndStop(db, schema, a, id); // A is inside the transaction of step "effect"
      const quick = ["q1", "q2", "q3"];
      const b = worker(schema, "B", {
        FENCE_SPAWN_ON_SIGNAL: quick.map((q) => `fence-quick:${q}`).join(","),
      });
      await b.waitFor((l) => l.event === "ready", "B ready");
      // B may take x1 over within a poll of the expiry (and then stall in the same transaction
      // itself), so the window where the lease reads as expired can be missed: either will do.
      await eventually(async () => {
        const s = await state(db, schema, id);
        return s.expired === true || s.leaseOwner === "B";
      }, `${id}'s lease to expire`);
      try {
        // B has seen the expired lease many times over (each tick announces it and B tries to claim it).
        await leaderTicks(db, schema, "B", 30);
        b.signal("SIGUSR2"); // B spawns three quick actors now, while A is still stalled
        await b.waitFor((l) => l.event === "spawned-on-signal", "B to spawn the quick actors", 30_000);
        await eventually(
          async () => {
            const { rows } = await db.query<{ n: string }>(
              `SELECT count(*) AS n FROM "${schema}".actors WHERE id = ANY($1) AND status = 'completed'`,
              [quick],
            );
            return Number(rows[0]?.n) === quick.length;
          },
          "B to complete the quick actors",
          30_000,
        );
      } catch (err) {
        const { rows } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`,
          [schema],
        );
        throw new Error(
          `${(err as Error).message}\n${rows[0]?.n} connections are blocked on a lock in schema ${schema} ` +
            `(A holds ${id}'s row lock inside its stalled transaction)`,
        );
      }

      await Promise.all([a.kill(), b.kill()]);
      await dropSchema(schema);
    },
  );

  test(
    "stalled inside a transactional step, its actor is still taken over after lease expiry and its effect never commits",
    { timeout: 120_000 },
    async () => {
      const { schema, db } = await setup();
      const id = "x2";
      const a = worker(schema, "A", { FENCE_SPAWN: `fence-in-tx:${id}` });
      const versionA = await stallAndStop(db, schema, a, id); // A is inside the transaction of step "effect"
      await release(db, schema, id); // A is frozen: only B sees it
      const b = worker(schema, "B");

      const done = await completed(
        db,
        schema,
        id,
        "B to take over and complete the actor while A is stalled",
      );
      assert.ok(done.leaseVersion > versionA);
      assert.deepEqual(done.output, { effect: "B" });

      a.signal("SIGCONT");
      await a.waitFor(abandoned(id), "A to abandon the execution", 30_000);
      assert.deepEqual(await effects(db, schema, id), ["B"], "only B's transactional effect committed");
      assert.deepEqual(await journal(db, schema, id), [[0, "tx", "effect", "B"]]);

      await Promise.all([a.kill(), b.kill()]);
      await dropSchema(schema);
    },
  );

  test(
    "alone and stalled past its lease, a worker resumes and completes its actors (it does not strand its own re-claim)",
    { timeout: 120_000 },
    async () => {
      // No other worker: when A wakes up its lease has expired, and its own poll may re-claim the
      // actor it is still running, racing its heartbeat. Three rounds (a fresh lone worker each),
      // so that the race is hit for sure.
      const { schema, db } = await setup();
      for (const round of [1, 2, 3]) {
        const id = `r${round}`;
        const a = worker(schema, `A${round}`, { FENCE_SPAWN: `fence-step:${id}` });
        await stallAndStop(db, schema, a, id); // A is inside step "stall"
        await release(db, schema, id);
        await eventually(
          async () => (await state(db, schema, id)).expired === true,
          `${id}'s lease to expire`,
        );
        a.signal("SIGCONT");
        try {
          await eventually(
            async () => (await state(db, schema, id)).status === "completed",
            `${a.name} to complete ${id} after waking up`,
            20_000,
          );
        } catch (err) {
          const s = await state(db, schema, id);
          throw new Error(
            `${(err as Error).message} (round ${round}): ${id} is ${s.status}, leased by ${s.leaseOwner} ` +
              `at version ${s.leaseVersion}, lease ${s.expired ? "expired" : "live"}${a.describe()}`,
          );
        }
        assert.deepEqual(await effects(db, schema, id), [a.name]);
        await a.kill();
      }
      await dropSchema(schema);
    },
  );
});
