import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { actor, type ActorContext } from "../src/index.js";
import { eventually, testTroupe } from "./helpers.js";
import { storageOf } from "./support/internals.js";

// Item 12 of issue 10: after waking 200 of 20,000 idle actors a worker showed
// `running 0, reserved 100, free 0`. Whatever the paths taken (claims, deliveries, parks,
// replays), once the worker is idle again every slot must be free.

const IDLE = 2000;
const WAKE = 200;
const CONCURRENCY = 100;
const handled = new Map<string, number>();

const idler = actor("idler", async (ctx: ActorContext) => {
  await ctx.subscribe("poke", "direct");
  for (;;) {
    const m = await ctx.receive<number>("poke");
    await ctx.step("handle", () => void handled.set(ctx.id, (handled.get(ctx.id) ?? 0) + (m?.data ?? 0)));
  }
});

describe("worker slots", () => {
  // A small cache of parked executions: most wakeups replay instead of resuming in memory.
  const t = testTroupe({ actors: [idler], concurrency: CONCURRENCY, maxCachedExecutions: 500 });
  after(() => t.stop());

  test(`waking ${WAKE} of ${IDLE} idle actors: every slot is free again once idle`, async () => {
    await t.start();
    for (let i = 0; i < IDLE; i += 100)
      await Promise.all(Array.from({ length: 100 }, (_, k) => t.spawn(idler, {}, { id: `idle-${i + k}` })));
    await eventually(
      async () => (await t.stats()).byStatus.waiting === IDLE,
      `${IDLE} actors waiting`,
      120_000,
    );
    // Every tenth actor: both parked on this worker and evicted ones (they replay).
    const woken = Array.from({ length: WAKE }, (_, k) => `idle-${k * (IDLE / WAKE)}`);
    await Promise.all(woken.map((id) => t.send(id, "poke", 1)));
    await eventually(() => woken.every((id) => handled.get(id) === 1), `${WAKE} messages handled`, 120_000);
    const idle = await eventually(
      async () => {
        const s = t.workerStats()!;
        const waiting = (await t.stats()).byStatus.waiting;
        return s.running === 0 && s.starting === 0 && s.reserved === 0 && waiting === IDLE ? s : null;
      },
      "the worker idle with every actor waiting again",
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last snapshot ${JSON.stringify(t.workerStats())}`);
    });
    assert.equal(idle?.free, CONCURRENCY, JSON.stringify(idle));
    // And the worker still works: one more round for the same actors.
    await Promise.all(woken.map((id) => t.send(id, "poke", 1)));
    await eventually(() => woken.every((id) => handled.get(id) === 2), "second round handled", 120_000);
  });
});

const quick = actor("slots-quick", async () => "done");
const waiter = actor("slots-waiter", async (ctx: ActorContext) => {
  await ctx.subscribe("slots-go", "direct");
  const m = await ctx.receive<string>("slots-go");
  return m?.data;
});

/**
 * While a claim is in flight it holds every free slot (`reserved`), so the worker reads as
 * full. A wakeup that arrives then must not be dropped: here the poll (the backstop) is 30
 * days away, so a dropped wakeup leaves the actor stuck and the test times out.
 */
describe("wakeups that arrive while a claim holds the slots", () => {
  const t = testTroupe({ actors: [quick, waiter], pollInterval: "30d" });
  after(() => t.stop());

  /** Holds the next claimRunnable's answer (after its query ran) until `release()`. */
  function holdNextClaim() {
    const actors = storageOf(t).actors as unknown as { claimRunnable: (...a: unknown[]) => Promise<unknown> };
    const real = actors.claimRunnable.bind(actors);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = false;
    actors.claimRunnable = async (...a) => {
      const rows = await real(...a);
      if (!held) {
        held = true;
        await gate;
      }
      return rows;
    };
    return { release, holding: () => held };
  }

  test("an actor woken meanwhile is claimed once the slots return", async () => {
    await t.start();
    const claim = holdNextClaim();
    let ref;
    try {
      await (await t.spawn(quick, {})).result({ timeout: "30s" }); // its end kicks a claim round
      await eventually(() => claim.holding() && t.workerStats()!.reserved > 0, "a claim in flight");
      ref = await t.spawn(quick, {}); // its wakeup finds no free slot
    } finally {
      claim.release();
    }
    assert.equal(await ref.result({ timeout: "20s" }), "done");
    await eventually(() => t.workerStats()!.reserved === 0, "slots returned");
  });

  test("a message delivered meanwhile reaches its waiting actor once the slots return", async () => {
    await t.start();
    const ref = await t.spawn(waiter, {});
    await eventually(async () => (await t.get(ref.id))?.status === "waiting", "waiting");
    const claim = holdNextClaim();
    try {
      await (await t.spawn(quick, {})).result({ timeout: "30s" });
      await eventually(() => claim.holding() && t.workerStats()!.reserved > 0, "a claim in flight");
      await t.send(ref.id, "slots-go", "hello"); // its wakeup finds no free slot
    } finally {
      claim.release();
    }
    assert.equal(await ref.result({ timeout: "20s" }), "hello");
    await eventually(() => t.workerStats()!.reserved === 0, "slots returned");
  });
});
