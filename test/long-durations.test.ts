import assert from "node:assert/strict";
import { after, describe, mock, test } from "node:test";
import { actor, type ActorContext, type Troupe } from "../src/index.js";
import { MAX_TIMER_MS, startInterval, startTimeout } from "../src/timers.js";
import { testTroupe } from "./helpers.js";
import { databaseOf } from "./support/internals.js";

// Item 9 of issue 10: durations are valid up to 100 years, but Node's timers take at most
// 2^31−1 ms (~24.8 days) and fire a longer delay after 1 ms.

const DAY = 86_400_000;

/** Every TimeoutOverflowWarning this process emits. */
const overflows: string[] = [];
process.on("warning", (w) => {
  if (w.name === "TimeoutOverflowWarning") overflows.push(w.message);
});

describe("timers longer than the platform's limit", () => {
  test("a 30-day timeout waits out 30 days in steps, then fires once", () => {
    mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
    try {
      let fired = 0;
      // (The mock runs a callback at the end of its tick: tick to each step's end exactly.)
      startTimeout(() => fired++, 30 * DAY);
      mock.timers.tick(MAX_TIMER_MS - 1);
      assert.equal(fired, 0, "not at once");
      mock.timers.tick(1); // one platform-sized step ends: re-armed for the rest
      assert.equal(fired, 0);
      mock.timers.tick(30 * DAY - MAX_TIMER_MS - 1);
      assert.equal(fired, 0, "not before the real deadline");
      mock.timers.tick(1);
      assert.equal(fired, 1);
      mock.timers.tick(100 * DAY);
      assert.equal(fired, 1, "once");

      const cleared = startTimeout(() => fired++, 60 * DAY);
      mock.timers.tick(MAX_TIMER_MS + 1); // cleared in its second step
      cleared.clear();
      mock.timers.tick(100 * DAY);
      assert.equal(fired, 1, "a cleared timer never fires");
    } finally {
      mock.timers.reset();
    }
  });

  test("a 40-day interval fires every 40 days, not every millisecond", () => {
    mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
    try {
      let fired = 0;
      const t = startInterval(() => fired++, 40 * DAY);
      mock.timers.tick(1);
      assert.equal(fired, 0, "not at once");
      mock.timers.tick(MAX_TIMER_MS - 1);
      mock.timers.tick(40 * DAY - MAX_TIMER_MS - 1);
      assert.equal(fired, 0);
      mock.timers.tick(1);
      assert.equal(fired, 1);
      mock.timers.tick(MAX_TIMER_MS);
      mock.timers.tick(40 * DAY - MAX_TIMER_MS);
      assert.equal(fired, 2);
      t.clear();
      mock.timers.tick(400 * DAY);
      assert.equal(fired, 2, "stopped by clear()");
    } finally {
      mock.timers.reset();
    }
  });
});

let attempts = 0;
const patient = actor("patient", async (ctx: ActorContext) =>
  ctx.step(
    "slow call",
    async () => {
      attempts++;
      await new Promise((r) => setTimeout(r, 50)); // the step's own work, well inside its timeout
      return "answered";
    },
    { timeout: "30d" },
  ),
);

describe("long durations in a running troupe", () => {
  const started: Troupe[] = [];
  after(() => Promise.all(started.map((t) => t.stop())));

  test('a step with timeout "30d" does not time out at once', async () => {
    const t = testTroupe({ actors: [patient] });
    started.push(t);
    await t.start();
    const ref = await t.spawn(patient, {});
    assert.equal(await ref.result({ timeout: "30s" }), "answered");
    assert.equal(attempts, 1, "one attempt: no STEP_TIMEOUT, no retry");
  });

  /** Statements an idle worker sends while the test waits out a short measurement window. */
  async function queriesWhileIdle(t: Troupe): Promise<number> {
    await t.start();
    const db = databaseOf(t) as unknown as {
      query: (...a: unknown[]) => Promise<unknown>;
      transaction: (...a: unknown[]) => Promise<unknown>;
    };
    let n = 0;
    const query = db.query.bind(db);
    const transaction = db.transaction.bind(db);
    db.query = (...a) => (n++, query(...a));
    db.transaction = (...a) => (n++, transaction(...a));
    // The window is what is measured (no condition to wait for): an idle worker whose timers
    // are armed right sends next to nothing in it; one whose timers overflow, hundreds.
    await new Promise((r) => setTimeout(r, 1000));
    return n;
  }

  test('pollInterval "30d": an idle worker makes a bounded number of queries', async () => {
    const t = testTroupe({ pollInterval: "30d", lease: "30s" }); // heartbeat every 10 s
    started.push(t);
    const n = await queriesWhileIdle(t);
    assert.ok(n <= 20, `${n} statements from an idle worker in the window`);
  });

  test('lease "90d": an idle worker makes a bounded number of queries', async () => {
    const t = testTroupe({ pollInterval: "24d", lease: "90d" }); // 24 days: just inside the limit
    started.push(t);
    const n = await queriesWhileIdle(t);
    assert.ok(n <= 20, `${n} statements from an idle worker in the window`);
  });

  test("no timer overflowed", () => {
    assert.deepEqual(overflows, []);
  });
});
