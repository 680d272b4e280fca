import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { NonRetryableError, actor, type ActorContext, type Troupe, type TroupeError } from "../src/index.js";
import { eventually, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, sqlRun, storageOf } from "./support/internals.js";

// Item 2 of issue 10: a cancel must never cut a compensation-mode replay short. The replay
// of these sagas takes ~10 × 30 ms of plain code, longer than a heartbeat (lease / 3), so a
// cancel check during it used to end the replay with most closures unregistered.

const STEPS = 10;
/** Per actor id: compensations in the order they ran, and passes through the plain code. */
const undone = new Map<string, string[]>();
const passes = new Map<string, number>();
const pause = () => new Promise((r) => setTimeout(r, 30));

/** Ten compensable steps (even ones transactional, odd ones plain) with plain code between, then waits. */
const longSaga = actor("long-saga", async (ctx: ActorContext) => {
  for (let i = 0; i < STEPS; i++) {
    const name = `reserve-${i}`;
    if (i % 2 === 0) {
      await ctx.transaction(name, async (tx) => (await tx.query("SELECT 1"), i), {
        compensate: async (r: number) => void undone.get(ctx.id)?.push(`tx ${r}`),
      });
    } else {
      await ctx.step(name, () => i, {
        compensate: (r: number) => void undone.get(ctx.id)?.push(`step ${r}`),
      });
    }
    if (i === 2) passes.set(ctx.id, (passes.get(ctx.id) ?? 0) + 1);
    await pause();
  }
  await ctx.subscribe("go", "direct");
  for (;;) {
    await ctx.receive("go");
    await ctx.step("handled", () => {});
  }
});

/** Set to change the code under a waiting actor: its step "c" is then no longer reached on replay. */
let dropStepC = false;

/** "a" compensates fine, "b"'s compensation fails for good, "c" is left out after a code change. */
const recordSaga = actor("record-saga", async (ctx: ActorContext, input: { fail: boolean }) => {
  await ctx.step("a", () => 1, { compensate: () => void undone.get(ctx.id)?.push("undo a") });
  await ctx.step("b", () => 2, {
    compensate: () => {
      throw new NonRetryableError("refund service down");
    },
  });
  if (!dropStepC) await ctx.step("c", () => 3, { compensate: () => void undone.get(ctx.id)?.push("undo c") });
  if (input.fail) throw new Error("shipping unavailable");
  await ctx.subscribe("go", "direct");
  await ctx.receive("go");
  return "unreachable";
});

const expected = Array.from({ length: STEPS }, (_, k) => STEPS - 1 - k).map((i) =>
  i % 2 === 0 ? `tx ${i}` : `step ${i}`,
);

async function compensationRows(t: Troupe, id: string) {
  const { rows } = await databaseOf(t).query<{ name: string; status: string }>(
    boundSql(t, "SELECT name, status FROM {schema}.compensations WHERE actor_id = $1 ORDER BY seq"),
    [id],
  );
  return rows.map((r) => `${r.name}=${r.status}`);
}

describe("cancelling a saga runs every compensation", () => {
  const t = testTroupe({
    actors: [longSaga, recordSaga],
    lease: "300ms",
    pollInterval: "100ms",
    maxCachedExecutions: 1,
  });
  after(() => t.stop());

  test("cancel while it waits: the compensation-mode replay re-registers all ten, they run LIFO", async () => {
    await t.start();
    for (let run = 0; run < 3; run++) {
      const id = `wait-${run}`;
      undone.set(id, []);
      const ref = await t.spawn(longSaga, {}, { id });
      await eventually(async () => (await t.get(id))?.status === "waiting", "waiting", 30_000);
      await ref.cancel("customer left");
      await eventually(async () => (await t.get(id))?.status === "cancelled", "cancelled", 30_000);
      assert.deepEqual(undone.get(id), expected, `run ${run}: every compensation once, newest first`);
      assert.deepEqual(
        await compensationRows(t, id),
        Array.from({ length: STEPS }, (_, i) => `reserve-${i}=done`),
      );
    }
  });

  test("cancel during a replay started by a delivered message: all ten run", async () => {
    await t.start();
    const id = "delivered";
    undone.set(id, []);
    await t.spawn(longSaga, {}, { id });
    await eventually(async () => (await t.get(id))?.status === "waiting", "waiting", 30_000);
    // Parked after it (not beside it, or whichever parks last stays cached): with
    // maxCachedExecutions 1 this evicts "delivered", so the delivery below replays it.
    await t.spawn(longSaga, {}, { id: "evicts-it" });
    await eventually(
      async () => (await t.get("evicts-it"))?.status === "waiting",
      "evicts-it waiting",
      30_000,
    );
    await eventually(() => t.workerStats()?.parked === 1, "only evicts-it cached", 30_000);
    await t.send(id, "go", 1);
    await eventually(() => (passes.get(id) ?? 0) >= 2, "the replay is under way", 30_000);
    await t.cancel(id, "mid-replay");
    await eventually(async () => (await t.get(id))?.status === "cancelled", "cancelled", 30_000);
    assert.deepEqual(undone.get(id), expected);
    assert.deepEqual(
      await compensationRows(t, id),
      Array.from({ length: STEPS }, (_, i) => `reserve-${i}=done`),
    );
  });

  test("a cancelled actor's record tells a compensation that failed from one that never ran", async () => {
    await t.start();
    undone.set("rec-cancel", []);
    const ref = await t.spawn(recordSaga, { fail: false }, { id: "rec-cancel" });
    await eventually(async () => (await t.get(ref.id))?.status === "waiting", "waiting", 30_000);
    dropStepC = true; // a new deployment: the replay no longer reaches "c"
    try {
      await ref.cancel("customer left");
      await eventually(async () => (await t.get(ref.id))?.status === "cancelled", "cancelled", 30_000);
    } finally {
      dropStepC = false;
    }
    assert.deepEqual(undone.get(ref.id), ["undo a"]);
    const info = await t.get(ref.id);
    assert.equal(info?.error?.code, "CANCELLED");
    assert.match(info?.error?.message ?? "", /customer left/);
    assert.match(info?.error?.message ?? "", /compensations that failed: b\b/);
    assert.match(info?.error?.message ?? "", /compensations that never ran: c\b/);
    assert.deepEqual(
      info?.compensations?.map((c) => [c.name, c.status]),
      [
        ["a", "done"],
        ["b", "failed"],
        ["c", "skipped"],
      ],
    );
    assert.match(info?.compensations?.[1]?.error?.message ?? "", /refund service down/);
    assert.match(info?.compensations?.[2]?.error?.message ?? "", /never ran/);
    assert.equal(info?.compensations?.[0]?.error, undefined);
    assert.ok(info?.compensations?.every((c) => c.settledAt instanceof Date));
  });

  test("a failed saga's record says the same: which compensation failed", async () => {
    await t.start();
    undone.set("rec-fail", []);
    const ref = await t.spawn(recordSaga, { fail: true }, { id: "rec-fail" });
    await eventually(async () => (await t.get(ref.id))?.status === "failed", "failed", 30_000);
    assert.deepEqual(undone.get(ref.id), ["undo c", "undo a"]);
    const info = await t.get(ref.id);
    assert.match(info?.error?.message ?? "", /shipping unavailable \(compensations that failed: b\)$/);
    assert.deepEqual(
      info?.compensations?.map((c) => [c.name, c.status]),
      [
        ["a", "done"],
        ["b", "failed"],
        ["c", "done"],
      ],
    );
  });

  test("a journal read that fails during the compensation-mode replay does not skip compensations", async () => {
    await t.start();
    const id = "journal-read-fails";
    undone.set(id, []);
    const ref = await t.spawn(longSaga, {}, { id });
    await eventually(async () => (await t.get(id))?.status === "waiting", "waiting", 30_000);
    const journal = storageOf(t).journal as unknown as { page: (...a: unknown[]) => Promise<unknown> };
    const page = journal.page.bind(journal);
    let failed = false;
    journal.page = async (...a) => {
      if (a[0] === id && !failed) {
        failed = true; // once: the connection dropped
        throw Object.assign(new Error("terminating connection due to administrator command"), {
          code: "57P01",
        });
      }
      return page(...a);
    };
    try {
      await ref.cancel("customer left");
      await eventually(async () => (await t.get(id))?.status === "cancelled", "cancelled", 30_000);
    } finally {
      journal.page = page;
    }
    assert.ok(failed, "the replay's journal read failed once");
    assert.deepEqual(undone.get(id), expected);
    assert.deepEqual(
      await compensationRows(t, id),
      Array.from({ length: STEPS }, (_, i) => `reserve-${i}=done`),
    );
  });
});

// A cancel whose wakeup never reaches the worker (Redis down, a hint lost): the request is
// only on the actor's row. The step running when it came still finishes and is journaled;
// the journal write that records it sees the request, so the next step never starts.
const gateOpen = new Map<string, () => void>();
const gatedNotes: string[] = [];
const gatedSaga = actor("gated-saga", async (ctx: ActorContext) => {
  await ctx.step("book", () => void gatedNotes.push("do book"), {
    compensate: () => void gatedNotes.push("undo book"),
  });
  await ctx.step("long call", async () => {
    gatedNotes.push("long call started");
    await new Promise<void>((resolve) => gateOpen.set(ctx.id, resolve));
    gatedNotes.push("long call finished");
  });
  await ctx.step("never", () => void gatedNotes.push("after cancel (must not happen)"));
  return "unreachable";
});

describe("a cancel the worker hears of only through the database", () => {
  // A long lease: the heartbeat, which also reads cancel requests, stays out of the window.
  const t = testTroupe({ actors: [gatedSaga], lease: "30s" });
  after(() => t.stop());

  test("the step in flight finishes, nothing after it runs, the compensation runs", async () => {
    await t.start();
    const ref = await t.spawn(gatedSaga, {}, { id: "gated" });
    await eventually(async () => gateOpen.has("gated"), "long call running", 30_000);
    // What troupe.cancel writes, without its wakeup.
    await sqlRun(
      t,
      "UPDATE {schema}.actors SET cancel_requested_at = now(), cancel_reason = 'lost hint' WHERE id = $1",
      ["gated"],
    );
    gateOpen.get("gated")!();
    await assert.rejects(ref.result({ timeout: "30s" }), (e: TroupeError) => e.code === "CANCELLED");
    assert.deepEqual(gatedNotes, ["do book", "long call started", "long call finished", "undo book"]);
  });
});
