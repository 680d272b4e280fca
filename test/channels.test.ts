import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { TroupeError, actor, channel, type ActorContext, type Message } from "../src/index.js";
import { eventually, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

type Seen = {
  id: string;
  data: unknown;
  channel: string;
  sender?: string;
  metadata: Record<string, unknown>;
  at: boolean;
};
const view = (m: Message<unknown>): Seen => ({
  id: m.id,
  data: m.data,
  channel: m.channel,
  ...(m.sender ? { sender: m.sender } : {}),
  metadata: m.metadata,
  at: m.publishedAt instanceof Date && !Number.isNaN(m.publishedAt.getTime()),
});

/** Subscribes, announces readiness by joining a group, then collects `n` messages. */
const collector = actor(
  "collector",
  async (
    ctx: ActorContext,
    input: { ch: string; mode: "broadcast" | "competing" | "direct"; n: number; ready: string },
  ) => {
    await ctx.subscribe(input.ch, input.mode);
    await ctx.join(input.ready);
    const got: Seen[] = [];
    for (let i = 0; i < input.n; i++) {
      const m = await ctx.receive(input.ch, { timeout: "30s" });
      if (!m) break;
      got.push(view(m));
    }
    return got;
  },
);

/** Waits for a "go" before subscribing to its inbox: what was sent before must still be there. */
const lateReader = actor("late-reader", async (ctx: ActorContext, input: { n: number }) => {
  await ctx.subscribe("go", "direct");
  await ctx.join("late-ready");
  await ctx.receive("go");
  await ctx.subscribe("inbox", "direct");
  const got: Seen[] = [];
  for (let i = 0; i < input.n; i++) {
    const m = await ctx.receive("inbox", { timeout: "30s" });
    if (!m) break;
    got.push(view(m));
  }
  return got;
});

const publisher = actor("publisher", async (ctx: ActorContext, input: { ch: string; n: number }) => {
  for (let i = 0; i < input.n; i++) await ctx.publish(input.ch, { i }, { metadata: { k: i } });
  return "done";
});

const sender = actor("sender", async (ctx: ActorContext, input: { to: string; ch: string; n: number }) => {
  for (let i = 0; i < input.n; i++) await ctx.send(input.to, input.ch, i);
  return "sent";
});

const timeouter = actor("timeouter", async (ctx: ActorContext) => {
  await ctx.subscribe("quiet", "broadcast");
  const a = await ctx.receive("quiet", { timeout: "100ms" });
  return a === null ? "timed out" : "got one";
});

const anyOf = actor("any-of", async (ctx: ActorContext) => {
  await ctx.subscribe("left", "competing");
  await ctx.subscribe("right", "competing");
  await ctx.join("any-of-ready");
  const m = await ctx.receiveAny(["left", "right"], { timeout: "30s" });
  return m ? { channel: m.channel, data: m.data } : null;
});

const Typed = channel("typed", {
  schema: {
    parse(x: unknown) {
      if (typeof x !== "object" || x === null || typeof (x as { n?: unknown }).n !== "number")
        throw new Error("n must be a number");
      return x as { n: number };
    },
  },
});

const typedReader = actor("typed-reader", async (ctx: ActorContext) => {
  await ctx.subscribe(Typed, "competing");
  const m = await ctx.receive(Typed, { timeout: "30s" });
  return m?.data.n;
});

const conflict = actor("conflict", async (ctx: ActorContext) => {
  await ctx.subscribe("moded", "broadcast");
  try {
    await ctx.subscribe("moded-c", "competing");
    await ctx.subscribe("moded-c2", "broadcast");
    return "no error";
  } catch (err) {
    return (err as TroupeError).code;
  }
});

const notSubscribed = actor("not-subscribed", async (ctx: ActorContext) => {
  try {
    await ctx.receive("never-subscribed", { timeout: "1s" });
    return "no error";
  } catch (err) {
    return (err as TroupeError).code;
  }
});

const sendToGhost = actor("send-to-ghost", async (ctx: ActorContext) => {
  try {
    await ctx.send("no-such-actor", "inbox", 1);
    return "no error";
  } catch (err) {
    return (err as TroupeError).code;
  }
});

async function readyCount(t: ReturnType<typeof testTroupe>, group: string) {
  return (await t.members(group)).length;
}

describe("channels", () => {
  const t = testTroupe({
    actors: [
      collector,
      lateReader,
      publisher,
      sender,
      timeouter,
      anyOf,
      typedReader,
      conflict,
      notSubscribed,
      sendToGhost,
    ],
  });
  after(() => t.stop());

  test("broadcast: every subscriber gets every later message once, in order, with metadata and sender", async () => {
    await t.start();
    await t.publish("news", { early: true }); // before anyone subscribed: nobody gets it
    const refs = await Promise.all(
      [0, 1, 2].map((i) =>
        t.spawn(
          collector,
          { ch: "news", mode: "broadcast", n: 21, ready: "news-ready" },
          { id: `news-${i}` },
        ),
      ),
    );
    await eventually(async () => (await readyCount(t, "news-ready")) === 3, "subscribers ready");
    for (let i = 0; i < 10; i++) await t.publish("news", { i }, { metadata: { from: "outside" } });
    const pub = await t.spawn(publisher, { ch: "news", n: 11 });
    await pub.result({ timeout: "30s" });
    const results = await Promise.all(refs.map((r) => r.result({ timeout: "30s" })));
    for (const got of results) {
      assert.equal(got.length, 21);
      assert.deepEqual(
        got.slice(0, 10).map((m) => m.data),
        Array.from({ length: 10 }, (_, i) => ({ i })),
      );
      assert.deepEqual(
        got.slice(10).map((m) => m.data),
        Array.from({ length: 11 }, (_, i) => ({ i })),
      );
      assert.ok(got.every((m) => m.channel === "news" && m.at));
      assert.deepEqual(got[0]!.metadata, { from: "outside" });
      assert.equal(got[0]!.sender, undefined);
      assert.equal(got[10]!.sender, pub.id);
      assert.deepEqual(got[15]!.metadata, { k: 5 });
      const ids = got.map((m) => BigInt(m.id));
      assert.ok(
        ids.every((id, i) => i === 0 || id > ids[i - 1]!),
        "ids increase",
      );
    }
  });

  test("competing: each message goes to exactly one consumer, FIFO; earlier messages wait for a consumer", async () => {
    await t.start();
    for (let i = 0; i < 30; i++) await t.publish("jobs", i); // no consumer yet: they wait
    const refs = await Promise.all(
      [0, 1, 2].map((i) =>
        t.spawn(collector, { ch: "jobs", mode: "competing", n: 40, ready: "jobs-ready" }, { id: `job-${i}` }),
      ),
    );
    await eventually(async () => (await readyCount(t, "jobs-ready")) === 3, "consumers ready");
    for (let i = 30; i < 60; i++) await t.publish("jobs", i);
    // Each collector stops after a 30s timeout with nothing left; wait until all 60 are claimed instead.
    await eventually(async () => {
      const { rows } = await databaseOf(t).query<{ n: number }>(
        boundSql(
          t,
          "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'jobs' AND claimed_by IS NOT NULL",
        ),
      );
      return Number(rows[0]!.n) === 60;
    }, "all jobs claimed");
    // Close the consumers by publishing nothing more: read what each got from the journal so far.
    const seen: number[] = [];
    for (const r of refs) {
      for await (const e of historyOf(t, r.id))
        if (e.kind === "receive" && e.value) seen.push((e.value as Message<number>).data);
    }
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      Array.from({ length: 60 }, (_, i) => i),
    );
    for (const r of refs) {
      const mine: number[] = [];
      for await (const e of historyOf(t, r.id))
        if (e.kind === "receive" && e.value) mine.push((e.value as Message<number>).data);
      assert.deepEqual(
        mine,
        [...mine].sort((a, b) => a - b),
        "each consumer sees FIFO order",
      );
    }
  });

  test("direct: the mailbox keeps messages sent before the subscription, in order", async () => {
    await t.start();
    const ref = await t.spawn(lateReader, { n: 5 }, { id: "mbox" });
    await eventually(async () => (await readyCount(t, "late-ready")) === 1, "reader ready");
    await t.send("mbox", "inbox", "before-1");
    await t.send("mbox", "inbox", "before-2");
    await ref.send("inbox", "ref-3");
    await (await t.spawn(sender, { to: "mbox", ch: "inbox", n: 2 })).result({ timeout: "30s" });
    await t.send("mbox", "go", true);
    const got = await ref.result({ timeout: "30s" });
    assert.deepEqual(
      got.map((m) => m.data),
      ["before-1", "before-2", "ref-3", 0, 1],
    );
    assert.ok(got.every((m) => m.channel === "inbox"));
  });

  test("receive returns null when its timeout passes", async () => {
    await t.start();
    assert.equal(await (await t.spawn(timeouter, {})).result({ timeout: "30s" }), "timed out");
  });

  test("receiveAny returns the first message of any channel, tagged with it", async () => {
    await t.start();
    const ref = await t.spawn(anyOf, {});
    await eventually(async () => (await readyCount(t, "any-of-ready")) === 1, "ready");
    await t.publish("right", { side: "r" });
    assert.deepEqual(await ref.result({ timeout: "30s" }), { channel: "right", data: { side: "r" } });
  });

  test("typed channels validate on publish (nothing written) and on receive", async () => {
    await t.start();
    const before = await countMessages(t, "typed");
    await assert.rejects(
      t.publish(Typed, { n: "nope" } as unknown as { n: number }),
      (e: TroupeError) => e.code === "INVALID_MESSAGE",
    );
    assert.equal(await countMessages(t, "typed"), before);
    await t.publish(Typed, { n: 7 });
    assert.equal(await (await t.spawn(typedReader, {})).result({ timeout: "30s" }), 7);
  });

  test("binary payloads arrive as bytes", async () => {
    await t.start();
    const ref = await t.spawn(collector, { ch: "blobs", mode: "direct", n: 1, ready: "blob-ready" });
    await t.send(ref.id, "blobs", { raw: new Uint8Array([9, 8, 7]), when: new Date(0) });
    const [m] = await ref.result({ timeout: "30s" });
    const data = m!.data as { raw: Uint8Array; when: Date };
    assert.deepEqual([...data.raw], [9, 8, 7]);
    assert.equal(data.when.getTime(), 0);
  });

  test("a channel has one mode: subscribing with another is CHANNEL_MODE_CONFLICT", async () => {
    await t.start();
    const first = await t.spawn(collector, { ch: "moded-c2", mode: "competing", n: 0, ready: "x-ready" });
    await first.result({ timeout: "30s" });
    assert.equal(await (await t.spawn(conflict, {})).result({ timeout: "30s" }), "CHANNEL_MODE_CONFLICT");
  });

  test("bad input inside actors: receive without subscription, send to an unknown actor", async () => {
    await t.start();
    assert.equal(await (await t.spawn(notSubscribed, {})).result({ timeout: "30s" }), "NOT_SUBSCRIBED");
    const before = await countMessages(t, "inbox:no-such-actor");
    assert.equal(await (await t.spawn(sendToGhost, {})).result({ timeout: "30s" }), "NOT_FOUND");
    assert.equal(await countMessages(t, "inbox:no-such-actor"), before);
  });

  test("bad input from outside: names, unknown actors, oversized payloads — typed errors, nothing written", async () => {
    await t.start();
    const before = await countAllMessages(t);
    const code = (p: Promise<unknown>) =>
      p.then(
        () => "no error",
        (e: TroupeError) => e.code,
      );
    assert.equal(await code(t.publish("", 1)), "VALIDATION");
    assert.equal(await code(t.publish("x".repeat(201), 1)), "VALIDATION");
    assert.equal(await code(t.publish("has space", 1)), "VALIDATION");
    assert.equal(await code(t.send("ghost", "inbox", 1)), "NOT_FOUND");
    assert.equal(await code(t.broadcast("", "inbox", 1)), "VALIDATION");
    assert.equal(await code(t.members("x".repeat(300))), "VALIDATION");
    assert.equal(await code(t.publish("big", "x".repeat(2 * 1024 * 1024))), "PAYLOAD_TOO_LARGE");
    assert.equal(await code(t.publish("fn", { f: () => 1 })), "NOT_SERIALIZABLE");
    assert.equal(
      await code(t.publish("meta", 1, { metadata: [] as unknown as Record<string, unknown> })),
      "VALIDATION",
    );
    assert.equal(await countAllMessages(t), before);
  });
});

async function countMessages(t: ReturnType<typeof testTroupe>, ch: string): Promise<number> {
  const { rows } = await databaseOf(t).query<{ n: number }>(
    boundSql(t, "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = $1"),
    [ch],
  );
  return Number(rows[0]!.n);
}

async function countAllMessages(t: ReturnType<typeof testTroupe>): Promise<number> {
  const { rows } = await databaseOf(t).query<{ n: number }>(
    boundSql(t, "SELECT count(*)::int AS n FROM {schema}.messages"),
  );
  return Number(rows[0]!.n);
}

async function* historyOf(t: ReturnType<typeof testTroupe>, id: string) {
  const { decode } = await import("../src/codec.js");
  const entries = await storageOf(t).journal.page(id, 0, 10_000);
  for (const e of entries) yield { kind: e.kind, value: e.result ? decode(e.result) : null };
}
