import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import {
  ActorFailedError,
  ActorIdConflictError,
  DuplicateActorError,
  StepTimeoutError,
  TroupeError,
  actor,
  type Troupe,
} from "../src/index.js";
import { dropSchema, eventually, freshSchema, testTroupe } from "./helpers.js";
import {
  countActors,
  countJournal,
  persistentBackend,
  type PersistentBackend,
} from "./fixtures/durability-backend.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

/** Stops whatever a test started, whatever happened. */
function stopAll(troupes: Troupe[]): Promise<unknown> {
  return Promise.allSettled(troupes.map((t) => t.stop()));
}

async function statusOf(t: Troupe, id: string): Promise<string | undefined> {
  return (await t.get(id))?.status;
}

describe("replay after a restart", () => {
  const STEPS = 1000;
  let stepRuns = 0;
  /** Which Troupe (1 before the restart, 2 after) is running: recorded by the last step. */
  let phase = 0;

  const longJournal = actor("long-journal", async (ctx) => {
    let sum = 0;
    for (let i = 0; i < STEPS; i++) sum += await ctx.step(`s${i}`, () => ++stepRuns);
    await ctx.sleep("1500ms");
    const ranIn = await ctx.step("after-sleep", () => {
      stepRuns++;
      return phase;
    });
    return { sum, ranIn };
  });

  test("a 1,000-step actor replayed after a restart re-executes none of its completed steps", async () => {
    const backend = await persistentBackend();
    const started: Troupe[] = [];
    try {
      phase = 1;
      const t1 = backend.troupe({ actors: [longJournal] });
      started.push(t1);
      await t1.start();
      const ref = await t1.spawn(longJournal, {}, { id: "long-1" });
      await eventually(async () => (await statusOf(t1, ref.id)) === "waiting", "the actor to sleep", 120_000);
      assert.equal(stepRuns, STEPS);
      assert.equal(await countJournal(t1, ref.id), STEPS, "one journal entry per completed step");
      await t1.stop();

      phase = 2;
      const t2 = backend.troupe({ actors: [longJournal] });
      started.push(t2);
      await t2.start();
      const out = await t2.ref<{ sum: number; ranIn: number }>(ref.id).result({ timeout: "120s" });
      // Replayed steps return their journaled results: 1 + 2 + … + 1000.
      assert.equal(out.sum, (STEPS * (STEPS + 1)) / 2);
      assert.equal(out.ranIn, 2, "the step after the sleep ran after the restart");
      assert.equal(stepRuns, STEPS + 1, "no completed step ran again on replay");
      assert.equal(await statusOf(t2, ref.id), "completed");
      // 1,000 steps + the sleep + the last step, each journaled once.
      assert.equal(await countJournal(t2, ref.id), STEPS + 2);
    } finally {
      await stopAll(started);
      await backend.cleanup();
    }
  });

  test("stop() in the middle of a long run hands the actor back; a new Troupe finishes it, no step twice", async () => {
    let runs = 0;
    let phaseNow = 1;
    const ranIn: number[] = [];
    let stopNow: (() => void) | undefined;
    const interrupted = actor("interrupted", async (ctx) => {
      let sum = 0;
      for (let i = 0; i < STEPS; i++)
        sum += await ctx.step(`i${i}`, () => {
          ranIn.push(phaseNow);
          if (++runs === 100) stopNow?.(); // stop while the actor is under way
          return runs;
        });
      return sum;
    });
    const backend = await persistentBackend();
    const started: Troupe[] = [];
    try {
      const t1 = backend.troupe({ actors: [interrupted] });
      started.push(t1);
      let stopped: Promise<void> | undefined;
      stopNow = () => {
        stopped = t1.stop();
      };
      await t1.start();
      const ref = await t1.spawn(interrupted, {}, { id: "interrupted-1" });
      await eventually(() => stopped !== undefined, "the stop to be requested", 60_000);
      await stopped;
      stopNow = undefined;
      const runsAtStop = runs;
      assert.ok(
        runsAtStop < STEPS,
        `stopped before the end (ran ${runsAtStop} steps), else this proves nothing`,
      );

      phaseNow = 2;
      const t2 = backend.troupe({ actors: [interrupted] });
      started.push(t2);
      await t2.start();
      assert.equal(await t2.ref(ref.id).result({ timeout: "120s" }), (STEPS * (STEPS + 1)) / 2);
      assert.equal(runs, STEPS, "every step ran exactly once across the two Troupes");
      assert.ok(ranIn.includes(2), "the second Troupe ran the rest");
      assert.equal(await countJournal(t2, ref.id), STEPS);
    } finally {
      await stopAll(started);
      await backend.cleanup();
    }
  });

  test("replay detects non-determinism: v2 of an actor does another step first", async () => {
    let v1Runs = 0;
    let v2Runs = 0;
    const v1 = actor("shape-shifter", async (ctx) => {
      await ctx.step("a", () => ++v1Runs);
      await ctx.sleep("1500ms");
      return "v1";
    });
    const v2 = actor("shape-shifter", async (ctx) => {
      await ctx.step("b", () => ++v2Runs);
      await ctx.sleep("1500ms");
      return "v2";
    });
    const backend = await persistentBackend();
    const started: Troupe[] = [];
    try {
      const t1 = backend.troupe({ actors: [v1] });
      started.push(t1);
      await t1.start();
      const ref = await t1.spawn(v1, {}, { id: "nd-1" });
      await eventually(async () => (await statusOf(t1, ref.id)) === "waiting", "v1 to sleep");
      await t1.stop();

      const t2 = backend.troupe({ actors: [v2] });
      started.push(t2);
      await t2.start();
      const err = await t2
        .ref(ref.id)
        .result({ timeout: "60s" })
        .then(
          (v) => assert.fail(`expected a failure, got ${JSON.stringify(v)}`),
          (e: unknown) => e,
        );
      assert.ok(err instanceof ActorFailedError, `expected ActorFailedError, got ${String(err)}`);
      assert.ok(err instanceof TroupeError);
      assert.equal(err.error.code, "NON_DETERMINISM");
      assert.match(err.error.message, /"a"/, "the message names the journaled op");
      assert.match(err.error.message, /"b"/, "the message names the op the code does now");
      const info = await t2.get(ref.id);
      assert.equal(info?.status, "failed");
      assert.equal(info?.error?.code, "NON_DETERMINISM");
      assert.equal(v1Runs, 1);
      assert.equal(v2Runs, 0, "the mismatching step must not run live");
      assert.equal(await countJournal(t2, ref.id), 2, "nothing journaled after the mismatch");
    } finally {
      await stopAll(started);
      await backend.cleanup();
    }
  });
});

describe("spawn is idempotent and uniqueKey is exclusive", () => {
  let onceRuns = 0;
  const once = actor("run-once", async (ctx, input: { n: number }) => {
    await ctx.step("count", () => ++onceRuns);
    return input.n;
  });
  const other = actor("other-type", async () => "other");

  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const gated = actor("gated", async (ctx, input: { tag: string }) => {
    await ctx.step("wait-for-gate", () => gate);
    return input.tag;
  });

  const schema = freshSchema("idem");
  const t = testTroupe({ actors: [once, other, gated], schema });
  after(async () => {
    openGate();
    await t.stop();
    await dropSchema(schema);
  });

  test("the same id twice is the same actor, run once", async () => {
    await t.start();
    const before = await countActors(t);
    const [a, b] = await Promise.all([
      t.spawn(once, { n: 1 }, { id: "same-id" }),
      t.spawn(once, { n: 2 }, { id: "same-id" }),
    ]);
    const c = await t.spawn(once, { n: 3 }, { id: "same-id" });
    assert.equal(a.id, "same-id");
    assert.equal(b.id, "same-id");
    assert.equal(c.id, "same-id");
    const first = await a.result({ timeout: "30s" });
    assert.equal(await b.result({ timeout: "30s" }), first);
    assert.equal(await c.result({ timeout: "30s" }), first);
    assert.ok(first === 1 || first === 2, "the input of one of the concurrent spawns");
    assert.deepEqual((await t.get("same-id"))?.input, { n: first });
    // Spawning a finished actor's id again returns it; it does not run again.
    const d = await t.spawn(once, { n: 4 }, { id: "same-id" });
    assert.equal(await d.result({ timeout: "30s" }), first);
    assert.equal(onceRuns, 1);
    assert.equal(await countActors(t), before + 1);
  });

  test("the same id with another actor type is ID_CONFLICT and changes nothing", async () => {
    await t.start();
    await (await t.spawn(once, { n: 7 }, { id: "taken-id" })).result({ timeout: "30s" });
    const before = await countActors(t);
    const err = await t.spawn(other, {}, { id: "taken-id" }).catch((e: unknown) => e);
    assert.ok(err instanceof ActorIdConflictError, `expected ActorIdConflictError, got ${String(err)}`);
    assert.ok(err instanceof TroupeError);
    assert.equal(err.code, "ID_CONFLICT");
    assert.equal(await countActors(t), before);
    const info = await t.get("taken-id");
    assert.equal(info?.actor, "run-once");
    assert.equal(info?.output, 7);
  });

  test("a uniqueKey held by an active actor refuses a second one until the first finishes", async () => {
    await t.start();
    const first = await t.spawn(gated, { tag: "first" }, { id: "uk-1", uniqueKey: "room-7" });
    await eventually(async () => (await statusOf(t, first.id)) === "running", "the first holder to run");
    const before = await countActors(t);

    const err = await t
      .spawn(gated, { tag: "second" }, { id: "uk-2", uniqueKey: "room-7" })
      .catch((e: unknown) => e);
    assert.ok(err instanceof DuplicateActorError, `expected DuplicateActorError, got ${String(err)}`);
    assert.ok(err instanceof TroupeError);
    assert.equal(err.code, "DUPLICATE_ACTOR");
    assert.equal(err.existingId, "uk-1");
    assert.equal(await t.get("uk-2"), null, "no row for the refused actor");
    assert.equal(await countActors(t), before);
    // Spawning the holder itself again (same id, same key) is idempotent, not a duplicate.
    assert.equal((await t.spawn(gated, { tag: "first" }, { id: "uk-1", uniqueKey: "room-7" })).id, "uk-1");
    // A random id is refused just the same.
    await assert.rejects(t.spawn(gated, { tag: "third" }, { uniqueKey: "room-7" }), {
      code: "DUPLICATE_ACTOR",
    });
    assert.equal(await countActors(t), before);

    openGate();
    assert.equal(await first.result({ timeout: "30s" }), "first");
    const again = await t.spawn(gated, { tag: "again" }, { id: "uk-3", uniqueKey: "room-7" });
    assert.equal(await again.result({ timeout: "30s" }), "again");
    assert.equal(await countActors(t), before + 1);
  });
});

describe("durable timers and transactional steps", () => {
  test("journaled rich values replay with their types after a restart", async () => {
    let live = 0;
    const rich = actor("rich", async (ctx) => {
      const values = await ctx.step("values", () => {
        live++;
        return {
          when: new Date(Date.UTC(2031, 4, 6, 7, 8, 9, 10)),
          big: 2n ** 80n,
          map: new Map<string, number[]>([["k", [1, 2]]]),
          set: new Set(["a", "b"]),
          bytes: new Uint8Array([0, 255, 7]),
          nested: { n: null, f: 1.5, s: "ü€𝄞" },
        };
      });
      const nothing = await ctx.step("nothing", () => {
        live++;
      });
      const nil = await ctx.step("nil", () => {
        live++;
        return null;
      });
      await ctx.sleep("1s");
      return {
        when: values.when instanceof Date && values.when.toISOString(),
        big: typeof values.big === "bigint" && values.big === 2n ** 80n,
        map: values.map instanceof Map && JSON.stringify([...values.map]),
        set: values.set instanceof Set && [...values.set].join(","),
        bytes: values.bytes instanceof Uint8Array && [...values.bytes].join(","),
        nested: values.nested,
        nothing: nothing === undefined,
        nil: nil === null,
      };
    });
    const backend = await persistentBackend();
    const started: Troupe[] = [];
    try {
      const t1 = backend.troupe({ actors: [rich] });
      started.push(t1);
      await t1.start();
      const ref = await t1.spawn(rich, {}, { id: "rich-1" });
      await eventually(async () => (await statusOf(t1, ref.id)) === "waiting", "the actor to sleep");
      await t1.stop();
      const t2 = backend.troupe({ actors: [rich] });
      started.push(t2);
      await t2.start();
      assert.deepEqual(await t2.ref(ref.id).result({ timeout: "60s" }), {
        when: "2031-05-06T07:08:09.010Z",
        big: true,
        map: '[["k",[1,2]]]',
        set: "a,b",
        bytes: "0,255,7",
        nested: { n: null, f: 1.5, s: "ü€𝄞" },
        nothing: true,
        nil: true,
      });
      assert.equal(live, 3, "the values came from the journal, not from running the steps again");
    } finally {
      await stopAll(started);
      await backend.cleanup();
    }
  });

  test("concurrent spawns with one uniqueKey: exactly one wins", async () => {
    const holder = actor("holder", async (ctx) => {
      await ctx.sleep("1h");
    });
    const schema = freshSchema("ukc");
    const t = testTroupe({ actors: [holder], schema });
    try {
      await t.start();
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          t.spawn(holder, {}, { id: `contender-${i}`, uniqueKey: "throne" }),
        ),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      assert.equal(won.length, 1, `one spawn wins; got ${won.length}`);
      for (const r of lost) assert.equal((r.reason as TroupeError).code, "DUPLICATE_ACTOR", String(r.reason));
      const { rows } = await databaseOf(t).query<{ n: number }>(
        boundSql(t, "SELECT count(*)::int AS n FROM {schema}.actors WHERE unique_key = 'throne'"),
      );
      assert.equal(rows[0]?.n, 1);
    } finally {
      await t.stop();
      await dropSchema(schema);
    }
  });

  test("a waiting actor holds its uniqueKey too", async () => {
    const napper = actor("napper", async (ctx) => {
      await ctx.sleep("1h");
      return "rested";
    });
    const schema = freshSchema("nap");
    const t = testTroupe({ actors: [napper], schema });
    try {
      await t.start();
      await t.spawn(napper, {}, { id: "nap-1", uniqueKey: "bed" });
      await eventually(async () => (await statusOf(t, "nap-1")) === "waiting", "the holder to sleep");
      const before = await countActors(t);
      await assert.rejects(t.spawn(napper, {}, { id: "nap-2", uniqueKey: "bed" }), (e: unknown) => {
        assert.ok(e instanceof DuplicateActorError);
        assert.equal(e.existingId, "nap-1");
        return true;
      });
      assert.equal(await countActors(t), before);
    } finally {
      await t.stop();
      await dropSchema(schema);
    }
  });

  test("a timer that fell due while no Troupe was running fires at the next start", async () => {
    let afterRuns = 0;
    const dozer = actor("dozer", async (ctx) => {
      await ctx.sleep("1s");
      await ctx.step("after", () => ++afterRuns);
      return "awake";
    });
    const backend = await persistentBackend();
    const started: Troupe[] = [];
    try {
      const t1 = backend.troupe({ actors: [dozer] });
      started.push(t1);
      await t1.start();
      const ref = await t1.spawn(dozer, {}, { id: "dozer-1" });
      await eventually(async () => (await statusOf(t1, ref.id)) === "waiting", "the actor to sleep");
      const { rows } = await databaseOf(t1).query<{ due: Date }>(
        boundSql(t1, "SELECT due_at AS due FROM {schema}.timers WHERE actor_id = $1"),
        [ref.id],
      );
      const due = new Date(rows[0]!.due).getTime();
      await t1.stop();
      assert.equal(afterRuns, 0);
      // The condition: the deadline has passed while nothing was running.
      await eventually(() => Date.now() > due + 50, "the deadline to pass", 30_000);

      const t2 = backend.troupe({ actors: [dozer] });
      started.push(t2);
      await t2.start();
      assert.equal(await t2.ref(ref.id).result({ timeout: "60s" }), "awake");
      assert.equal(afterRuns, 1);
    } finally {
      await stopAll(started);
      await backend.cleanup();
    }
  });

  test("a sleeping actor survives a restart, wakes after its deadline and its transaction's row exists once", async () => {
    const SLEEP_MS = 1500;
    let phase = 0;
    const sleeper = actor("sleeper", async (ctx, input: { table: string }) => {
      const before = await ctx.step("before", () => Date.now());
      await ctx.sleep(SLEEP_MS);
      const woke = await ctx.transaction("record", async (tx) => {
        const now = Date.now();
        await tx.query(`INSERT INTO ${input.table} (actor_id, woke_at_ms) VALUES ($1, $2)`, [ctx.id, now]);
        return now;
      });
      return { before, woke, phase };
    });
    const backend = await persistentBackend();
    const started: Troupe[] = [];
    try {
      phase = 1;
      const t1 = backend.troupe({ actors: [sleeper] });
      started.push(t1);
      await t1.start();
      const table = `"${storageOf(t1).schema}".effects`;
      await databaseOf(t1).query(
        `CREATE TABLE ${table} (actor_id text NOT NULL, woke_at_ms bigint NOT NULL)`,
      );
      const ref = await t1.spawn(sleeper, { table }, { id: "sleeper-1" });
      await eventually(async () => (await statusOf(t1, ref.id)) === "waiting", "the actor to sleep");
      await t1.stop();

      phase = 2;
      const t2 = backend.troupe({ actors: [sleeper] });
      started.push(t2);
      await t2.start();
      const out = await t2
        .ref<{ before: number; woke: number; phase: number }>(ref.id)
        .result({ timeout: "60s" });
      assert.equal(out.phase, 2, "woke in the second Troupe");
      assert.ok(
        out.woke - out.before >= SLEEP_MS,
        `woke ${out.woke - out.before} ms after the step before the sleep; the deadline was ${SLEEP_MS} ms`,
      );
      const { rows } = await databaseOf(t2).query<{ n: number; woke: string }>(
        `SELECT count(*)::int AS n, max(woke_at_ms)::text AS woke FROM ${table} WHERE actor_id = $1`,
        [ref.id],
      );
      assert.equal(rows[0]?.n, 1, "the transactional step's row exists exactly once");
      assert.equal(Number(rows[0]?.woke), out.woke, "the row is the one the journaled result describes");
      assert.equal(await statusOf(t2, ref.id), "completed");
      // Spawning the same id after the restart returns the finished actor: no second run.
      const again = await t2.spawn(sleeper, { table: "ignored" }, { id: ref.id });
      assert.deepEqual(await again.result({ timeout: "10s" }), out);
      assert.deepEqual((await t2.get(ref.id))?.input, { table });
      const timers = await databaseOf(t2).query<{ n: number }>(
        boundSql(t2, "SELECT count(*)::int AS n FROM {schema}.timers WHERE actor_id = $1"),
        [ref.id],
      );
      assert.equal(timers.rows[0]?.n, 0, "the fired timer is gone");
    } finally {
      await stopAll(started);
      await backend.cleanup();
    }
  });
});

describe("replayed errors and stop()", () => {
  test("a step error caught by instanceof takes the same branch when replayed after a restart", async () => {
    const branches: string[] = [];
    const careful = actor("careful", async (ctx) => {
      let kind = "none";
      try {
        await ctx.step("slow", () => new Promise((r) => setTimeout(r, 5_000).unref()), {
          timeout: 20,
          retry: { maxAttempts: 1 },
        });
      } catch (err) {
        // errors.ts: "Match on `code` (or `instanceof`)": both must survive replay.
        kind = `${err instanceof StepTimeoutError ? "timeout" : "other"}/${(err as TroupeError).code}`;
      }
      await ctx.step(`handle ${kind}`, () => branches.push(kind));
      await ctx.sleep("1s");
      return kind;
    });
    const backend = await persistentBackend();
    const started: Troupe[] = [];
    try {
      const t1 = backend.troupe({ actors: [careful] });
      started.push(t1);
      await t1.start();
      const ref = await t1.spawn(careful, {}, { id: "careful-1" });
      await eventually(async () => (await statusOf(t1, ref.id)) === "waiting", "the actor to sleep");
      assert.deepEqual(branches, ["timeout/STEP_TIMEOUT"], "live, the error is a StepTimeoutError");
      await t1.stop();

      const t2 = backend.troupe({ actors: [careful] });
      started.push(t2);
      await t2.start();
      const out = await t2
        .ref(ref.id)
        .result({ timeout: "60s" })
        .catch((e: unknown) => (e instanceof ActorFailedError ? `failed: ${e.error.message}` : e));
      assert.equal(out, "timeout/STEP_TIMEOUT", "the replayed error is still a StepTimeoutError");
    } finally {
      await stopAll(started);
      await backend.cleanup();
    }
  });

  test("stop() right after start() leaves no live leader lock and logs no errors", async () => {
    const backend = await persistentBackend();
    const problems: string[] = [];
    const t = backend.troupe({
      logger: (level, msg, fields) => {
        if (level === "warn" || level === "error")
          problems.push(`${level}: ${msg} ${JSON.stringify(fields)}`);
      },
    });
    try {
      try {
        await t.start();
      } finally {
        await t.stop();
      }
      const locks = await backend.rawQuery<{ name: string }>(
        `SELECT name FROM "${backend.schema}".system_locks WHERE owner = $1 AND expires_at > now()`,
        [t.workerId],
      );
      assert.deepEqual(
        locks.map((l) => l.name),
        [],
        "a stopped worker holds no lock (else the next worker waits for it to expire)",
      );
      const workers = await backend.rawQuery<{ id: string }>(
        `SELECT id FROM "${backend.schema}".workers WHERE id = $1`,
        [t.workerId],
      );
      assert.deepEqual(workers, [], "the stopped worker is deregistered");
      assert.deepEqual(problems, [], "a clean stop logs no warnings or errors");
    } finally {
      await backend.cleanup();
    }
  });
});

// ---- kill -9 ---------------------------------------------------------------------------

const WORKER = fileURLToPath(new URL("./fixtures/tx-kill-worker.ts", import.meta.url));

interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the worker fixture to its end (or kills it after `limitMs`, which fails the test). */
function runWorker(
  backend: PersistentBackend,
  env: Record<string, string>,
  limitMs = 90_000,
): Promise<ChildEnd> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER], {
      env: {
        ...process.env,
        TX_DATABASE: backend.database,
        TX_SCHEMA: backend.schema,
        ...(backend.redis ? { TX_REDIS: backend.redis } : {}),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const guard = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`worker did not finish within ${limitMs} ms; stderr:\n${stderr}`));
    }, limitMs);
    child.on("error", (e) => {
      clearTimeout(guard);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function countEffects(backend: PersistentBackend, actorId: string): Promise<number> {
  const rows = await backend.rawQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM "${backend.schema}".effects WHERE actor_id = $1`,
    [actorId],
  );
  return rows[0]!.n;
}

/** Messages and outbox events the tx-kill actor wrote inside its transaction. */
async function countTxWrites(backend: PersistentBackend, actorId: string): Promise<number[]> {
  const q = async (sql: string) =>
    (await backend.rawQuery<{ n: number }>(sql.replaceAll("{schema}", `"${backend.schema}"`), [actorId]))[0]!
      .n;
  return [
    await q(
      "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'tx-kill-news' AND sender = $1",
    ),
    await q("SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'tx-kill-note:' || $1"),
    await q("SELECT count(*)::int AS n FROM {schema}.outbox WHERE actor_id = $1"),
  ];
}

async function journalNames(backend: PersistentBackend, actorId: string): Promise<string[]> {
  const rows = await backend.rawQuery<{ name: string }>(
    `SELECT name FROM "${backend.schema}".journal WHERE actor_id = $1 ORDER BY seq`,
    [actorId],
  );
  return rows.map((r) => r.name);
}

// PGlite reopens a directory whose owning process was SIGKILLed (it runs crash recovery
// and discards the uncommitted transaction), so these run on both backends.
describe("effects across kill -9", { timeout: 240_000 }, () => {
  test("a transactional step killed before commit takes effect exactly once", async () => {
    const backend = await persistentBackend("txk");
    const id = "tx-actor-1";
    try {
      const killed = await runWorker(backend, { TX_MODE: "tx", TX_ACTOR_ID: id, KILL_AT_TX: "1" });
      assert.equal(
        killed.signal,
        "SIGKILL",
        `the worker should die by SIGKILL; it ended with ${JSON.stringify(killed)}`,
      );
      // The INSERT ran inside the uncommitted transaction: it died with the process.
      assert.equal(await countEffects(backend, id), 0, "no effect committed by the killed worker");
      assert.deepEqual(await countTxWrites(backend, id), [0, 0, 0], "no message or event either");
      assert.deepEqual(
        await journalNames(backend, id),
        ["prepare"],
        "the transaction's journal entry was not committed",
      );

      const done = await runWorker(backend, { TX_MODE: "tx", TX_ACTOR_ID: id });
      assert.equal(done.code, 0, `the second worker should finish; stderr:\n${done.stderr}`);
      assert.deepEqual(JSON.parse(done.stdout.trim().split("\n").at(-1)!), { out: { seen: 1 } });

      assert.equal(await countEffects(backend, id), 1, "the transactional effect exists exactly once");
      assert.deepEqual(await countTxWrites(backend, id), [1, 1, 1], "publish, send and emit exactly once");
      assert.deepEqual(await journalNames(backend, id), ["prepare", "insert-effect"]);
      const t = backend.troupe();
      await t.start();
      try {
        const info = await t.get(id);
        assert.equal(info?.status, "completed");
        assert.deepEqual(info?.output, { seen: 1 });
      } finally {
        await t.stop();
      }
    } finally {
      await backend.cleanup();
    }
  });

  test("a plain step killed after its effect runs again (at-least-once) and the actor completes", async () => {
    const backend = await persistentBackend("stk");
    const id = "step-actor-1";
    try {
      const killed = await runWorker(backend, { TX_MODE: "step", TX_ACTOR_ID: id, KILL_AT_STEP: "1" });
      assert.equal(
        killed.signal,
        "SIGKILL",
        `the worker should die by SIGKILL; it ended with ${JSON.stringify(killed)}`,
      );
      // The step's INSERT committed on its own connection; its journal entry never did.
      assert.equal(await countEffects(backend, id), 1);
      assert.deepEqual(await journalNames(backend, id), ["prepare"]);

      const done = await runWorker(backend, { TX_MODE: "step", TX_ACTOR_ID: id });
      assert.equal(done.code, 0, `the second worker should finish; stderr:\n${done.stderr}`);
      assert.deepEqual(JSON.parse(done.stdout.trim().split("\n").at(-1)!), { out: { done: true } });

      // Expected at-least-once semantics of ctx.step: an effect outside the journal
      // transaction that completed just before a crash runs again on replay. It must not
      // run more than once per crash (here: at most twice), and the actor must finish.
      const n = await countEffects(backend, id);
      assert.ok(n >= 1 && n <= 2, `the plain step's effect ran ${n} times; expected 1 or 2`);
      assert.deepEqual(await journalNames(backend, id), ["prepare", "insert-effect"]);
      const t = backend.troupe();
      await t.start();
      try {
        assert.equal((await t.get(id))?.status, "completed");
      } finally {
        await t.stop();
      }
    } finally {
      await backend.cleanup();
    }
  });
});
