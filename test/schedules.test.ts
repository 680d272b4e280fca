import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { actor, type ActorContext, type TroupeError } from "../src/index.js";
import { nextCronTime, parseCron } from "../src/cron.js";
import { eventually, testTroupe } from "./helpers.js";

let work = false;
const poller = actor("poller", async (ctx: ActorContext) => {
  const found = await ctx.step("poll", () => work);
  await ctx.sleep("30ms"); // a run takes a while: the next must not start before it ends
  return found ? { handled: 1 } : { idle: true };
});

describe("schedules", () => {
  const t = testTroupe({ actors: [poller], pollInterval: "50ms" });
  after(() => t.stop());

  test("interval runs back off while quiet (capped) and reset after a run that did work; one run at a time", async () => {
    await t.start();
    await t.schedule("poll-inbox", { actor: poller, every: "50ms", maxInterval: "400ms" });
    const info = async () => (await t.schedules()).find((s) => s.name === "poll-inbox")!;
    await eventually(async () => (await info()).currentIntervalMs === 400, "backed off to the cap", 30_000);
    const quiet = (await info()).runs;
    assert.ok(quiet >= 3, `${quiet} quiet runs (50 → 100 → 200 → 400)`);
    work = true;
    await eventually(
      async () => (await info()).currentIntervalMs === 50,
      "reset after a run with work",
      30_000,
    );
    await t.unschedule("poll-inbox");
    // Runs never overlapped: each started after the previous one finished.
    const runs = (await t.list({ actor: "poller", limit: 1000 })).items.sort(
      (a, b) => a.startedAt.getTime() - b.startedAt.getTime(),
    );
    for (let i = 1; i < runs.length; i++) {
      const prev = runs[i - 1]!;
      if (prev.finishedAt)
        assert.ok(runs[i]!.startedAt >= prev.finishedAt, `run ${runs[i]!.id} overlapped ${prev.id}`);
    }
    assert.ok(runs.every((r) => /^poll-inbox#\d+$/.test(r.id)));
  });

  test("bad schedules get typed errors and change nothing", async () => {
    await t.start();
    const code = (p: Promise<unknown>) =>
      p.then(
        () => "no error",
        (e: TroupeError) => e.code,
      );
    assert.equal(
      await code(t.schedule("x", { actor: poller, every: "1s", cron: "* * * * *" })),
      "VALIDATION",
    );
    assert.equal(await code(t.schedule("x", { actor: poller })), "VALIDATION");
    assert.equal(await code(t.schedule("x", { actor: "nope", every: "1s" })), "UNKNOWN_ACTOR");
    assert.equal(await code(t.schedule("x", { actor: poller, cron: "61 * * * *" })), "VALIDATION");
    assert.equal(await code(t.schedule("x", { actor: poller, cron: "0 0 31 2 *" })), "VALIDATION");
    assert.equal(await code(t.schedule("x", { actor: poller, every: "soon" })), "VALIDATION");
    assert.equal(await code(t.schedule("bad name", { actor: poller, every: "1s" })), "VALIDATION");
    assert.deepEqual(
      (await t.schedules()).map((s) => s.name).filter((n) => n === "x" || n === "bad name"),
      [],
    );
  });
});

describe("cron", () => {
  const at = (iso: string) => new Date(iso);
  test("next times (UTC)", () => {
    assert.equal(
      nextCronTime(parseCron("*/15 * * * *"), at("2030-01-01T10:07:30Z")).toISOString(),
      "2030-01-01T10:15:00.000Z",
    );
    assert.equal(
      nextCronTime(parseCron("0 9 * * 1-5"), at("2030-01-04T10:00:00Z")).toISOString(),
      "2030-01-07T09:00:00.000Z",
    ); // Fri → Mon
    assert.equal(
      nextCronTime(parseCron("0 0 29 2 *"), at("2030-03-01T00:00:00Z")).toISOString(),
      "2032-02-29T00:00:00.000Z",
    );
    assert.equal(
      nextCronTime(parseCron("30 23 31 12 7"), at("2030-12-30T00:00:00Z")).toISOString(),
      "2030-12-31T23:30:00.000Z",
    ); // dom OR dow
    assert.equal(
      nextCronTime(parseCron("5,10 0 * * *"), at("2030-01-01T00:05:00Z")).toISOString(),
      "2030-01-01T00:10:00.000Z",
    );
  });
  test("bad expressions", () => {
    for (const bad of ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"]) {
      assert.throws(
        () => parseCron(bad),
        (e: TroupeError) => e.code === "VALIDATION",
        bad,
      );
    }
  });
});

describe("schedule names", () => {
  const quick = actor("quick-run", async () => ({ handled: 1 }));
  const t = testTroupe({ actors: [quick], pollInterval: "50ms" });
  after(() => t.stop());

  test("a name scheduled again keeps counting runs instead of colliding with old run ids", async () => {
    await t.start();
    await t.schedule("nightly", { actor: quick, every: "20ms" });
    await eventually(async () => (await t.schedules())[0]!.runs >= 2, "two runs");
    await t.unschedule("nightly");
    const before = (await t.list({ actor: "quick-run", limit: 1000 })).items.length;
    await t.schedule("nightly", { actor: quick, every: "20ms" });
    await eventually(
      async () => (await t.list({ actor: "quick-run", limit: 1000 })).items.length >= before + 2,
      "new runs",
    );
    await t.unschedule("nightly");
    const ids = (await t.list({ actor: "quick-run", limit: 1000 })).items.map((a) => a.id);
    assert.equal(new Set(ids).size, ids.length);
  });
});
