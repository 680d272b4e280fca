import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { actor, type ActorContext } from "../src/index.js";
import { eventually, testTroupe } from "./helpers.js";
import { boundSql, databaseOf } from "./support/internals.js";

const member = actor(
  "member",
  async (ctx: ActorContext, input: { room: string; stay: boolean; timeout?: string }) => {
    await ctx.subscribe("chat", "direct");
    await ctx.join(input.room);
    await ctx.join(input.room); // idempotent
    if (!input.stay) return "gone";
    const m = await ctx.receive<string>("chat", { timeout: input.timeout ?? "30s" });
    return m ? { data: m.data, sender: m.sender ?? null } : null;
  },
);

const host = actor("host", async (ctx: ActorContext, input: { room: string }) => {
  await ctx.join(input.room);
  const before = await ctx.members(input.room);
  await ctx.leave(input.room);
  await ctx.leave(input.room); // idempotent
  const { count } = await ctx.broadcast(input.room, "chat", "from the host");
  return { before, count };
});

describe("process groups", () => {
  const t = testTroupe({ actors: [member, host] });
  after(() => t.stop());

  test("group broadcast reaches exactly the members at that moment; finished actors drop out", async () => {
    await t.start();
    const stayers = await Promise.all(
      [0, 1, 2, 3].map((i) => t.spawn(member, { room: "lobby", stay: true }, { id: `stay-${i}` })),
    );
    const quitters = await Promise.all(
      [0, 1].map((i) => t.spawn(member, { room: "lobby", stay: false }, { id: `quit-${i}` })),
    );
    for (const q of quitters) assert.equal(await q.result({ timeout: "30s" }), "gone");
    await eventually(async () => (await t.members("lobby")).length === 4, "four members");
    assert.deepEqual(await t.members("lobby"), ["stay-0", "stay-1", "stay-2", "stay-3"]);
    assert.deepEqual(await t.groups(), [{ group: "lobby", members: 4 }]);

    const { count } = await t.broadcast("lobby", "chat", "hello room");
    assert.equal(count, 4);
    for (const s of stayers)
      assert.deepEqual(await s.result({ timeout: "30s" }), { data: "hello room", sender: null });
    // Nothing was written for the actors that had left.
    const { rows } = await databaseOf(t).query<{ n: number }>(
      boundSql(t, "SELECT count(*)::int AS n FROM {schema}.messages WHERE direct_to LIKE 'quit-%'"),
    );
    assert.equal(rows[0]!.n, 0);
    assert.deepEqual(await t.members("lobby"), [], "completed members left the group");
  });

  test("a member who joins after a broadcast does not get it; ctx.broadcast and leave work from inside", async () => {
    await t.start();
    await t.broadcast("late-room", "chat", "too early");
    const late = await t.spawn(member, { room: "late-room", stay: true, timeout: "300ms" });
    assert.equal(await late.result({ timeout: "30s" }), null);

    const listener = await t.spawn(member, { room: "party", stay: true });
    await eventually(async () => (await t.members("party")).length === 1, "listener joined");
    const h = await t.spawn(host, { room: "party" });
    assert.deepEqual(await h.result({ timeout: "30s" }), { before: [h.id, listener.id].sort(), count: 1 });
    assert.deepEqual(await listener.result({ timeout: "30s" }), { data: "from the host", sender: h.id });
  });
});
