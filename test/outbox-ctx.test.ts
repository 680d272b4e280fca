import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { actor, httpSink, type ActorContext } from "../src/index.js";
import { eventually, restartable } from "./helpers.js";
import { SinkServer, duplicates } from "./fixtures/outbox-sink.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

const orderActor = actor("order", async (ctx: ActorContext, input: { n: number }) => {
  const { id } = await ctx.emit({ type: "order.placed", data: { n: input.n }, tenant: "acme" });
  await ctx.sleep(input.n === 0 ? 1 : 1500); // long enough to stop the troupe mid-sleep
  const again = await ctx.emit({ type: "order.done", data: { n: input.n } });
  return { id, again: again.id };
});

test("ctx.emit: journaled with the effect, replayed without re-emitting, relayed once", async () => {
  const sink = new SinkServer();
  await sink.listen(0);
  const db = await restartable();
  cleanups.push(() => sink.close(), db.cleanup);
  const relayOpts = { sink: httpSink({ url: sink.url }), pollInterval: 20 };

  const first = db.make({ actors: [orderActor], outbox: relayOpts });
  await first.start();
  await first.spawn(orderActor, { n: 1 }, { id: "o-1" });
  await eventually(async () => (await first.outboxCounts()).sent === 1, "first event relayed");
  await first.stop(); // the actor is asleep: it will replay on the next troupe

  const second = db.make({ actors: [orderActor], outbox: relayOpts });
  await second.start();
  cleanups.push(() => second.stop());
  const out = await second.ref<{ id: string; again: string }>("o-1").result({ timeout: "20s" });
  await eventually(async () => (await second.outboxCounts()).sent === 2, "second event relayed");
  assert.deepEqual(await second.outboxCounts(), { pending: 0, processing: 0, sent: 2, dead: 0 });
  assert.deepEqual(duplicates(sink.delivered), []);
  assert.deepEqual(sink.delivered, [out.id, out.again]);
  const placed = sink.requests[0]!;
  assert.equal(placed.headers["ce-source"], "troupe://order/o-1");
  assert.equal(placed.headers["ce-tenant"], "acme");
  const history = [];
  for await (const e of second.history("o-1")) history.push([e.kind, e.name]);
  assert.deepEqual(
    history.filter(([k]) => k === "emit"),
    [
      ["emit", "order.placed"],
      ["emit", "order.done"],
    ],
  );
  // outside actors
  const { id } = await second.emitEvent({ type: "from.outside" });
  await eventually(async () => (await second.outboxEvent(id))?.status === "sent", "outside event relayed");
  await assert.rejects(() => second.emitEvent({ type: "" }), { code: "VALIDATION" });
});

test("ctx.emit with bad input fails the actor's call and writes nothing", async () => {
  const bad = actor("bad-emitter", async (ctx: ActorContext) => {
    try {
      await ctx.emit({ type: "x", data: new Date() });
      return "emitted?";
    } catch (err) {
      return (err as { code: string }).code;
    }
  });
  const db = await restartable();
  cleanups.push(db.cleanup);
  const t = db.make({ actors: [bad] });
  await t.start();
  cleanups.push(() => t.stop());
  const ref = await t.spawn(bad, {});
  assert.equal(await ref.result({ timeout: "10s" }), "VALIDATION");
  assert.deepEqual(await t.outboxCounts(), { pending: 0, processing: 0, sent: 0, dead: 0 });
});

test("createOutboxRelay: a relay on the Troupe's own outbox sends what this process emits or re-drives at once, not at its next poll", async () => {
  const sink = new SinkServer();
  await sink.listen(0);
  const db = await restartable();
  cleanups.push(() => sink.close(), db.cleanup);
  const t = db.make({ worker: false });
  await t.start();
  cleanups.push(() => t.stop());
  // Polls far apart (longer than any wait below): only the Troupe's own emit and redrive
  // notifications can make this relay send in time.
  const relay = t.createOutboxRelay({
    sink: httpSink({ url: sink.url }),
    pollInterval: "1h",
    maxAttempts: 1,
  });
  relay.start();
  cleanups.push(() => relay.stop());

  // The first event may go out with the relay's first round; the second comes once it sleeps.
  const first = await t.emitEvent({ type: "relay.first" });
  await eventually(async () => (await t.outboxEvent(first.id))?.status === "sent", "first event sent");
  const second = await t.emitEvent({ type: "relay.second" });
  await eventually(
    async () => (await t.outboxEvent(second.id))?.status === "sent",
    "second event sent",
    10_000,
  );

  // A refused event is a dead letter at once (maxAttempts 1); re-driven, it goes out again.
  sink.respond = () => 500;
  const dead = await t.emitEvent({ type: "relay.dead" });
  await eventually(async () => (await t.outboxEvent(dead.id))?.status === "dead", "a dead letter", 10_000);
  const letters = await t.outboxDeadLetters({ limit: 10 });
  assert.deepEqual(
    letters.items.map((e) => e.event.id),
    [dead.id],
  );
  assert.equal(letters.nextCursor, undefined);
  sink.respond = () => 200;
  assert.deepEqual(await t.redriveOutbox([dead.id]), { count: 1 });
  await eventually(
    async () => (await t.outboxEvent(dead.id))?.status === "sent",
    "re-driven and sent",
    10_000,
  );
  assert.deepEqual(await t.outboxCounts(), { pending: 0, processing: 0, sent: 3, dead: 0 });
  assert.deepEqual(sink.delivered, [first.id, second.id, dead.id]);
  assert.equal(await t.outboxEvent("no-such-event"), null);
});
