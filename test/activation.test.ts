import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { actor, type ActorContext } from "../src/index.js";
import { eventually, testTroupe } from "./helpers.js";

/**
 * An activation ends once. Before issue 11 an execution whose actor had already thrown (or
 * returned) could still be handed to the parked cache while it drained its in-flight
 * operations: an operation it had not awaited registered a wait, the wait's callback parked
 * the execution, a message resumed it, and the two activations both ran the ending — the
 * saga's compensation ran twice.
 */
const undone: string[] = [];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const straggler = actor("act-straggler", async (ctx: ActorContext) => {
  await ctx.subscribe("act-in", "direct");
  await ctx.step("book", () => "booked", { compensate: () => void undone.push(ctx.id) });
  // Not awaited: the wait registers while the actor is already ending, and the slow step
  // keeps that ending busy (it drains in-flight operations) long enough for a message.
  ctx.receive("act-in").catch(() => {});
  ctx.step("slow", () => sleep(1500)).catch(() => {});
  throw new Error("boom");
});

describe("an activation ends once", () => {
  const t = testTroupe({ actors: [straggler] });
  after(() => t.stop());

  test("a wait registered while the actor is ending does not start a second ending", async () => {
    await t.start();
    const ref = await t.spawn(straggler, {}, { id: "straggler-1" });
    await eventually(
      async () => (await t.get(ref.id))?.status === "waiting",
      "the straggling wait registered",
    );
    await t.send(ref.id, "act-in", 1);
    await assert.rejects(ref.result({ timeout: "30s" }), /boom/);
    // Both endings (if there were two) have run their compensations by now.
    await sleep(500);
    assert.deepEqual(undone, [ref.id], "the compensation ran exactly once");
  });
});
