import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { after, describe, test } from "node:test";
import {
  Troupe,
  actor,
  asyncLocalContext,
  channel,
  type ActorContext,
  type Message,
  type TroupeError,
} from "../src/index.js";
import { PG_URL, REDIS_URL, dropSchema, eventually, freshSchema, testTroupe } from "./helpers.js";
import { sqlRows, storageOf } from "./support/internals.js";

const tenant = new AsyncLocalStorage<{ id: string }>();
const trace = new AsyncLocalStorage<string>();

const seen: Record<string, unknown> = {};
const contextual = actor("contextual", async (ctx: ActorContext) => {
  const inActor = tenant.getStore()?.id;
  const inStep = await ctx.step("look", () => ({ tenant: tenant.getStore()?.id, trace: trace.getStore() }));
  await ctx.publish("audit", { by: ctx.id }); // carries the restored context on
  await ctx.subscribe("ctx-in", "direct");
  const m = await ctx.receive("ctx-in", { timeout: "30s" });
  seen[ctx.id] = { inActor, inStep, message: m?.context };
  return { inActor, inStep, afterWait: tenant.getStore()?.id, messageContext: m?.context ?? null };
});

const listenerOf = actor("audit-reader", async (ctx: ActorContext) => {
  await ctx.subscribe("audit", "competing");
  const m: Message<unknown> | null = await ctx.receive("audit", { timeout: "30s" });
  return m?.context ?? null;
});

const job = actor("job", async (ctx: ActorContext, input: { ms: number }) => {
  await ctx.sleep(input.ms);
  return "ok";
});

/** Publishes, sends to itself and emits at fixed journal positions: a reused id repeats them. */
const announcer = actor("announcer", async (ctx: ActorContext, input: { n: number }) => {
  await ctx.publish("announcements", { n: input.n });
  await ctx.send(ctx.id, "self-note", { n: input.n });
  await ctx.emit({ type: "announced", data: { n: input.n } });
  return input.n;
});

describe("operations", () => {
  const t = testTroupe({
    actors: [contextual, listenerOf, job, announcer],
    context: [asyncLocalContext("tenant", tenant), asyncLocalContext("trace", trace)],
  });
  after(() => t.stop());

  test("context captured at spawn/send is restored inside the actor, its steps, after waits, and on messages", async () => {
    await t.start();
    const reader = await t.spawn(listenerOf, {});
    const ref = await tenant.run({ id: "acme" }, () => trace.run("trace-1", () => t.spawn(contextual, {})));
    await eventually(async () => (await t.get(ref.id))?.status === "waiting", "waiting for its message");
    await tenant.run({ id: "other-tenant" }, () => t.send(ref.id, "ctx-in", "hi"));
    assert.deepEqual(await ref.result({ timeout: "30s" }), {
      inActor: "acme",
      inStep: { tenant: "acme", trace: "trace-1" },
      afterWait: "acme",
      messageContext: { tenant: { id: "other-tenant" } },
    });
    // ctx.publish inside the actor carried the actor's own context to the audit message.
    assert.deepEqual(await reader.result({ timeout: "30s" }), { tenant: { id: "acme" }, trace: "trace-1" });
    const rows = await sqlRows<{ context: unknown }>(t, "SELECT context FROM {schema}.actors WHERE id = $1", [
      ref.id,
    ]);
    assert.deepEqual(rows[0]!.context, { tenant: { id: "acme" }, trace: "trace-1" });
  });

  test("idempotency keys: a repeated spawn, publish or send returns the first result", async () => {
    await t.start();
    const a = await t.spawn(job, { ms: 1 }, { idempotencyKey: "order-42" });
    const b = await t.spawn(job, { ms: 1 }, { idempotencyKey: "order-42" });
    assert.equal(a.id, b.id);
    const p1 = await t.publish("idem", 1, { idempotencyKey: "evt-1" });
    const p2 = await t.publish("idem", 2, { idempotencyKey: "evt-1" });
    assert.equal(p1.id, p2.id);
    const s1 = await t.send(a.id, "box", 1, { idempotencyKey: "k" });
    const s2 = await t.send(a.id, "box", 1, { idempotencyKey: "k" });
    assert.equal(s1.id, s2.id);
    const rows = await sqlRows<{ n: number }>(
      t,
      "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel IN ('idem', 'box:' || $1)",
      [a.id],
    );
    assert.equal(rows[0]!.n, 2);
  });

  test("stats: counts by status, durations and throughput; retention of finished actors", async () => {
    await t.start();
    const since = new Date(Date.now() - 1000);
    const refs = await Promise.all(Array.from({ length: 6 }, () => t.spawn(job, { ms: 20 })));
    for (const r of refs) await r.result({ timeout: "30s" });
    const s = await t.stats({ actor: "job", since });
    assert.ok(s.byStatus.completed >= 6);
    assert.ok(s.completed >= 6);
    assert.ok(s.durationMs.p50 !== null && s.durationMs.p50 >= 20, `p50 ${s.durationMs.p50}`);
    assert.ok(s.durationMs.p95 !== null && s.durationMs.p95 >= s.durationMs.p50);
    await assert.rejects(t.stats({ since: new Date("x") }), (e: TroupeError) => e.code === "VALIDATION");
    // Retention: finished actors older than the age go, with their journals; active ones stay.
    const live = await t.spawn(job, { ms: 60_000 });
    await eventually(async () => (await t.get(live.id))?.status === "waiting", "sleeping");
    const removed = await storageOf(t).actors.deleteFinished(0, 1000);
    assert.ok(removed >= 6);
    assert.equal(await t.get(refs[0]!.id), null);
    assert.equal((await t.get(live.id))?.status, "waiting");
    const rows = await sqlRows<{ n: number }>(
      t,
      "SELECT count(*)::int AS n FROM {schema}.journal WHERE actor_id = $1",
      [refs[0]!.id],
    );
    assert.equal(rows[0]!.n, 0);
  });

  test("an id reused after retention deleted its actor publishes, sends and emits again", async () => {
    await t.start();
    const id = `reused-${Date.now()}`;
    const first = await t.spawn(announcer, { n: 1 }, { id });
    assert.equal(await first.result({ timeout: "30s" }), 1);
    assert.ok((await storageOf(t).actors.deleteFinished(0, 1000)) >= 1);
    assert.equal(await t.get(id), null);
    // Same id, same journal positions (generation 0, seq 0–2) as the deleted incarnation.
    const second = await t.spawn(announcer, { n: 2 }, { id });
    assert.equal(await second.result({ timeout: "30s" }), 2);
    const count = async (sql: string) => (await sqlRows<{ n: number }>(t, sql, [id]))[0]!.n;
    assert.equal(
      await count(
        "SELECT count(*)::int AS n FROM {schema}.messages WHERE sender = $1 AND channel = 'announcements'",
      ),
      2,
    );
    assert.equal(
      await count("SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'self-note:' || $1"),
      2,
    );
    assert.equal(await count("SELECT count(*)::int AS n FROM {schema}.outbox WHERE actor_id = $1"), 2);
  });
});

const typist = actor("typist", async (ctx: ActorContext) => {
  await ctx.publish(channel("typing", { durable: false }), { who: ctx.id });
  await ctx.publish("room-log", { line: "hello" });
  return "ok";
});

describe("ping", () => {
  test("answers while started; NOT_STARTED before start and after stop", async () => {
    const t = testTroupe({ worker: false });
    await assert.rejects(t.ping(), { code: "NOT_STARTED" });
    await t.start();
    await t.ping();
    await t.stop();
    await assert.rejects(t.ping(), { code: "NOT_STARTED" });
  });
});

describe("listeners and non-durable channels", () => {
  const t = testTroupe({ actors: [typist] });
  after(() => t.stop());

  test("listen() gets durable messages published after it started, at most once; non-durable ones skip storage", async () => {
    await t.start();
    await t.publish("room-log", { line: "before listening" });
    const got: unknown[] = [];
    const typing: unknown[] = [];
    const stop = t.listen<{ line: string }>("room-log", (m) => void got.push(m.data.line));
    const Typing = channel<{ who: string }>("typing", { durable: false });
    const stopTyping = t.listen(Typing, (m) => void typing.push(m.data.who));
    await t.publish("room-log", { line: "one" });
    await t.publish(Typing, { who: "ana" });
    await (await t.spawn(typist, {}, { id: "typist-1" })).result({ timeout: "30s" });
    await eventually(() => got.length === 2 && typing.length === 2, "listeners fed");
    assert.deepEqual(got, ["one", "hello"]);
    assert.deepEqual(typing, ["ana", "typist-1"]);
    const rows = await sqlRows<{ n: number }>(
      t,
      "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'typing'",
    );
    assert.equal(rows[0]!.n, 0, "non-durable messages are never stored");
    stop();
    stopTyping();
    await t.publish("room-log", { line: "after stop" });
    await t.publish(Typing, { who: "bo" });
    assert.deepEqual(got, ["one", "hello"]);
    const err = await t
      .spawn(
        actor("bad-sub", async (ctx: ActorContext) => ctx.subscribe(Typing, "broadcast")),
        {},
      )
      .then((r) => r.result({ timeout: "30s" }))
      .catch((e: TroupeError) => e);
    assert.equal((err as TroupeError & { error?: { code: string } }).error?.code, "VALIDATION");
  });

  test("send and group broadcast on a non-durable channel are typed errors that write nothing", async () => {
    await t.start();
    const Typing = channel<{ who: string }>("typing-direct", { durable: false });
    const target = await t.spawn(typist, {}, { id: "typist-target" });
    await target.result({ timeout: "30s" });
    await assert.rejects(t.send(target.id, Typing, { who: "x" }), {
      code: "VALIDATION",
      message: /not durable/,
    });
    await assert.rejects(t.broadcast("room", Typing, { who: "x" }), {
      code: "VALIDATION",
      message: /not durable/,
    });
    // Inside an actor: the actor fails with the same typed error, nothing sent.
    const sender = actor("nd-sender", async (ctx: ActorContext) => {
      await ctx.send("typist-target", Typing, { who: ctx.id });
    });
    const ref = await t.spawn(sender, {});
    const failed = await ref.result({ timeout: "30s" }).catch((e: unknown) => e);
    assert.equal((failed as { error?: { code: string } }).error?.code, "VALIDATION");
    const rows = await sqlRows<{ n: number }>(
      t,
      "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel LIKE 'typing-direct%'",
    );
    assert.equal(rows[0]!.n, 0, "nothing written");
  });
});

describe("two installations sharing one Redis", () => {
  // Same schema name, different databases (the real server and an embedded one), one
  // Redis: hints, cancels and non-durable messages must stay inside each installation.
  const skip = REDIS_URL && PG_URL ? false : "needs a real PostgreSQL and Redis";
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const napper = actor("napper", async (ctx: ActorContext) => {
    await ctx.step("hold", () => gate, { compensate: () => {} }); // both running while a cancels
    await ctx.sleep("1h");
    return "woke";
  });

  test(
    "a cancel, a hint or a non-durable message never crosses to the other installation",
    { skip },
    async () => {
      const schema = freshSchema("iso");
      const a = new Troupe({
        actors: [napper],
        database: PG_URL,
        redis: REDIS_URL,
        schema,
        logger: () => {},
      });
      const b = new Troupe({
        actors: [napper],
        database: "memory://",
        redis: REDIS_URL,
        schema,
        logger: () => {},
      });
      try {
        await Promise.all([a.start(), b.start()]);
        const Presence = channel<string>("presence", { durable: false });
        const heardA: string[] = [];
        const heardB: string[] = [];
        a.listen(Presence, (m) => void heardA.push(m.data));
        b.listen(Presence, (m) => void heardB.push(m.data));
        const ra = await a.spawn(napper, {}, { id: "same-id" });
        const rb = await b.spawn(napper, {}, { id: "same-id" });
        await eventually(
          () => a.workerStats()?.running === 1 && b.workerStats()?.running === 1,
          "both in their step",
        );
        await a.publish(Presence, "only for a");
        await ra.cancel("a only");
        open();
        await assert.rejects(ra.result({ timeout: "20s" }), { code: "CANCELLED" });
        await eventually(async () => (await b.get(rb.id))?.status !== "running", "b's actor left its step");
        await eventually(() => heardA.length === 1, "a's listener heard a's message");
        // b's actor is untouched, and b heard nothing (give a stray hint time to land).
        await a.publish(Presence, "still only for a");
        await eventually(() => heardA.length === 2, "a's listener heard the second message");
        assert.deepEqual(heardB, []);
        assert.equal((await b.get(rb.id))?.status, "waiting");
      } finally {
        await Promise.all([a.stop(), b.stop()]);
        await dropSchema(schema);
      }
    },
  );
});
