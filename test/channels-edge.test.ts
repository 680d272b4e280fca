/**
 * Edge cases of channels and groups that channels.test.ts / groups.test.ts / bad-input.test.ts
 * leave out: bad input from inside actors (and again on replay), the age cut-off of message
 * retention, group memberships across recur, competing FIFO with receiveAny, and the
 * idempotency key of a group broadcast from outside.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  TroupeError,
  actor,
  channel,
  type ActorContext,
  type Message,
  type Troupe,
  type TroupeOptions,
} from "../src/index.js";
import { decode } from "../src/codec.js";
import { setDebugPoint } from "../src/internal/debug-points.js";
import { REDIS_URL, eventually, restartable, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

type Mode = "broadcast" | "competing" | "direct";

/**
 * restartable(), whose cleanup also stops every Troupe it made: a failed assertion must not
 * leave a worker running (the test process would never exit).
 */
async function lives(opts: TroupeOptions) {
  const db = await restartable(opts);
  const made: Troupe[] = [];
  return {
    make(o?: TroupeOptions): Troupe {
      const t = db.make(o);
      made.push(t);
      return t;
    },
    async cleanup(): Promise<void> {
      for (const t of made) await t.stop();
      await db.cleanup();
    },
  };
}

async function countMessages(t: Troupe, where = "true", params: unknown[] = []): Promise<number> {
  const { rows } = await databaseOf(t).query<{ n: number }>(
    boundSql(t, `SELECT count(*)::int AS n FROM {schema}.messages WHERE ${where}`),
    params,
  );
  return Number(rows[0]!.n);
}

/** The error code a call rejects with, or why it is not the expected kind of failure. */
async function codeOf(p: () => Promise<unknown>): Promise<string> {
  try {
    await p();
    return "no error";
  } catch (err) {
    return err instanceof TroupeError ? err.code : `not a TroupeError: ${String(err)}`;
  }
}

// ---- 1. bad input from inside actors -------------------------------------------------------

const Strict = channel("cedge-strict", {
  schema: {
    parse(x: unknown) {
      if (typeof x !== "number") throw new Error("a number please");
      return x;
    },
  },
});

const LONG = "x".repeat(201); // channel and group names: at most 200 characters
const BIG = "x".repeat(4096); // over maxPayloadBytes (2048) below

/** Every attempt that must fail, with the code it must fail with. */
const BAD_CALLS: [string, string, (ctx: ActorContext, group: string) => Promise<unknown>][] = [
  ["publish, empty channel", "VALIDATION", (ctx) => ctx.publish("", 1)],
  ["publish, 201-character channel", "VALIDATION", (ctx) => ctx.publish(LONG, 1)],
  ["publish, channel with a space", "VALIDATION", (ctx) => ctx.publish("a b", 1)],
  ["publish, oversized payload", "PAYLOAD_TOO_LARGE", (ctx) => ctx.publish("cedge-news", BIG)],
  ["publish, not serialisable", "NOT_SERIALIZABLE", (ctx) => ctx.publish("cedge-news", { f: () => 1 })],
  ["publish, schema rejects", "INVALID_MESSAGE", (ctx) => ctx.publish(Strict, "nope" as unknown as number)],
  ["send, empty channel", "VALIDATION", (ctx) => ctx.send(ctx.id, "", 1)],
  ["send, 201-character channel", "VALIDATION", (ctx) => ctx.send(ctx.id, LONG, 1)],
  ["send, empty target", "VALIDATION", (ctx) => ctx.send("", "cedge-inbox", 1)],
  ["send, 256-character target", "VALIDATION", (ctx) => ctx.send("y".repeat(256), "cedge-inbox", 1)],
  ["send, oversized payload", "PAYLOAD_TOO_LARGE", (ctx) => ctx.send(ctx.id, "cedge-inbox", BIG)],
  ["send, schema rejects", "INVALID_MESSAGE", (ctx) => ctx.send(ctx.id, Strict, "nope" as unknown as number)],
  ["send, unknown actor", "NOT_FOUND", (ctx) => ctx.send("cedge-nobody", "cedge-inbox", 1)],
  ["broadcast, empty group", "VALIDATION", (ctx) => ctx.broadcast("", "cedge-inbox", 1)],
  ["broadcast, 201-character group", "VALIDATION", (ctx) => ctx.broadcast(LONG, "cedge-inbox", 1)],
  ["broadcast, empty channel", "VALIDATION", (ctx, g) => ctx.broadcast(g, "", 1)],
  ["broadcast, 201-character channel", "VALIDATION", (ctx, g) => ctx.broadcast(g, LONG, 1)],
  ["broadcast, oversized payload", "PAYLOAD_TOO_LARGE", (ctx, g) => ctx.broadcast(g, "cedge-inbox", BIG)],
  [
    "broadcast, schema rejects",
    "INVALID_MESSAGE",
    (ctx, g) => ctx.broadcast(g, Strict, "nope" as unknown as number),
  ],
  ["receive, not subscribed", "NOT_SUBSCRIBED", (ctx) => ctx.receive("cedge-never", { timeout: "1s" })],
  [
    "receiveAny, one channel not subscribed",
    "NOT_SUBSCRIBED",
    (ctx) => ctx.receiveAny(["cedge-go", "cedge-never"], { timeout: "1s" }),
  ],
];

/** What each execution of the actor below saw (one entry per run of its function: first run, replay). */
const badInsideRuns: string[][] = [];

const badInside = actor("cedge-bad-inside", async (ctx: ActorContext, input: { group: string }) => {
  await ctx.subscribe("cedge-go", "direct");
  await ctx.subscribe("cedge-inbox", "direct");
  await ctx.join(input.group); // the group has a member: a bad broadcast would have someone to write to
  const codes: string[] = [];
  for (const [, , call] of BAD_CALLS) codes.push(await codeOf(() => call(ctx, input.group)));
  badInsideRuns.push(codes);
  await ctx.receive("cedge-go");
  return codes;
});

describe("bad input from inside actors", () => {
  test("publish/send/broadcast/receive with bad input: typed errors caught in the actor, nothing written, the same on replay", async () => {
    const expected = BAD_CALLS.map(([, code]) => code);
    const db = await lives({ actors: [badInside], maxPayloadBytes: 2048 });
    try {
      const first = db.make();
      await first.start();
      const ref = await first.spawn(badInside, { group: "cedge-bad-group" }, { id: "cedge-bad-1" });
      await eventually(
        async () => badInsideRuns.length === 1 && (await first.get(ref.id))?.status === "waiting",
        "the first run reached its receive",
      );
      assert.deepEqual(
        Object.fromEntries(BAD_CALLS.map(([what], i) => [what, badInsideRuns[0]![i]])),
        Object.fromEntries(BAD_CALLS.map(([what, code]) => [what, code])),
        "first run: each bad call fails with its code",
      );
      assert.equal(await countMessages(first), 0, "no message was written");
      await first.stop();

      // A new process: the actor is replayed from its journal.
      const second = db.make();
      await second.start();
      try {
        await second.send(ref.id, "cedge-go", true);
        assert.deepEqual(await second.ref(ref.id).result({ timeout: "30s" }), expected);
        assert.equal(badInsideRuns.length, 2, "the actor function ran again (replay)");
        assert.deepEqual(badInsideRuns[1], expected, "replay: the same errors");
        assert.equal(await countMessages(second), 1, "only the go message exists");
        const { rows } = await databaseOf(second).query<{
          seq: number;
          kind: string;
          error: { code?: string } | null;
        }>(
          boundSql(second, "SELECT seq, kind, error FROM {schema}.journal WHERE actor_id = $1 ORDER BY seq"),
          [ref.id],
        );
        // Argument errors consume no position; the two that need the database (NOT_FOUND,
        // NOT_SUBSCRIBED) are journaled as errors, which is what the replay returned.
        assert.deepEqual(
          rows.map((r) => [Number(r.seq), r.kind, r.error?.code ?? null]),
          [
            [0, "subscribe", null],
            [1, "subscribe", null],
            [2, "join", null],
            [3, "send", "NOT_FOUND"],
            [4, "receive", "NOT_SUBSCRIBED"],
            [5, "receiveAny", "NOT_SUBSCRIBED"],
            [6, "receive", null],
          ],
        );
      } finally {
        await second.stop();
      }
    } finally {
      await db.cleanup();
    }
  });
});

// ---- 2. retention: the age cut-off ---------------------------------------------------------

/**
 * Subscribes, reads `reads` messages, then waits for "go" and reads `later` ones. Joins
 * "ret-subscribed" once subscribed and "ret-read" once it has read what it should.
 */
const holder = actor(
  "cedge-holder",
  async (
    ctx: ActorContext,
    input: { subs: [string, Mode][]; reads: [string, number][]; later: [string, number][] },
  ) => {
    for (const [ch, mode] of input.subs) await ctx.subscribe(ch, mode);
    await ctx.subscribe("cedge-go", "direct");
    await ctx.join("ret-subscribed");
    const read = async (list: [string, number][]) => {
      const got: string[] = [];
      for (const [ch, n] of list)
        for (let i = 0; i < n; i++) {
          const m = await ctx.receive<string>(ch, { timeout: "20s" });
          got.push(m ? m.data : "timeout");
        }
      return got;
    };
    const first = await read(input.reads);
    await ctx.join("ret-read");
    await ctx.receive("cedge-go");
    return { first, later: await read(input.later) };
  },
);
const gone = actor("cedge-gone", async () => "done");

describe("message retention", () => {
  test("read messages older than messageRetention are removed, younger ones kept; unread ones are kept however old", async () => {
    const db = await lives({ actors: [holder, gone], messageRetention: "1h" });
    try {
      const t1 = db.make();
      await t1.start();
      const bReader = await t1.spawn(
        holder,
        {
          subs: [
            ["ret-news", "broadcast"],
            ["ret-half", "broadcast"],
          ],
          reads: [
            ["ret-news", 2],
            ["ret-half", 1],
          ],
          later: [],
        },
        { id: "ret-b-reader" },
      );
      const bIdle = await t1.spawn(
        holder,
        {
          subs: [
            ["ret-feed", "broadcast"],
            ["ret-half", "broadcast"],
          ],
          reads: [],
          later: [
            ["ret-feed", 2],
            ["ret-half", 1],
          ],
        },
        { id: "ret-b-idle" },
      );
      const cWorker = await t1.spawn(
        holder,
        { subs: [["ret-jobs", "competing"]], reads: [["ret-jobs", 2]], later: [["ret-jobs", 2]] },
        { id: "ret-c-worker" },
      );
      const dOwner = await t1.spawn(
        holder,
        { subs: [["ret-inbox", "direct"]], reads: [["ret-inbox", 2]], later: [["ret-inbox", 2]] },
        { id: "ret-d-owner" },
      );
      const finished = await t1.spawn(gone, {}, { id: "ret-gone" });
      assert.equal(await finished.result({ timeout: "20s" }), "done");
      await eventually(async () => (await t1.members("ret-subscribed")).length === 4, "all subscribed");

      const id: Record<string, string> = {};
      const pub = async (name: string, ch: string) => (id[name] = (await t1.publish(ch, name)).id);
      const send = async (name: string, to: string) => (id[name] = (await t1.send(to, "ret-inbox", name)).id);
      await pub("n1", "ret-news");
      await pub("n2", "ret-news");
      await pub("h1", "ret-half");
      await pub("f1", "ret-feed");
      await pub("f2", "ret-feed");
      for (const j of ["j1", "j2", "j3", "j4"]) await pub(j, "ret-jobs");
      for (const d of ["d1", "d2", "d3", "d4"]) await send(d, dOwner.id);
      await send("e1", finished.id); // to an actor that has finished: nobody will read it

      await eventually(async () => (await t1.members("ret-read")).length === 4, "first reads done");
      // It joins "ret-read", then registers its next receive: waiting a moment later, not at once.
      await eventually(async () => (await bReader.status()) === "waiting", "the broadcast reader waiting");
      const claimed = await databaseOf(t1).query<{ channel: string }>(
        boundSql(
          t1,
          "SELECT channel FROM {schema}.messages WHERE claimed_by IS NOT NULL AND channel IN ('ret-jobs', $1) ORDER BY id",
        ),
        [`ret-inbox:${dOwner.id}`],
      );
      assert.equal(claimed.rows.length, 4, "j1, j2, d1, d2 were claimed");

      const backdate = (names: string[], age: string) =>
        databaseOf(t1).query(
          boundSql(
            t1,
            "UPDATE {schema}.messages SET published_at = now() - $2::interval WHERE id = ANY($1::bigint[])",
          ),
          [names.map((n) => id[n]), age],
        );
      const oldRead = ["n1", "j1", "d1", "e1"];
      const youngRead = ["n2", "j2", "d2"];
      const unread = ["h1", "f1", "f2", "j3", "j4", "d3", "d4"];
      await backdate(oldRead, "2 hours");
      await backdate(youngRead, "30 minutes");
      await backdate(unread, "1000 days");
      await t1.stop();

      // The leader of a new process applies retention on its first tick.
      const t2 = db.make();
      await t2.start();
      try {
        const present = async (names: string[]) =>
          (await countMessages(t2, "id = ANY($1::bigint[])", [names.map((n) => id[n])])) === names.length;
        const absent = async (names: string[]) =>
          (await countMessages(t2, "id = ANY($1::bigint[])", [names.map((n) => id[n])])) === 0;
        await eventually(() => absent(oldRead), "old read messages removed");
        assert.ok(await present(youngRead), "read messages younger than the age are kept");
        assert.ok(await present(unread), "unread messages are kept, however old");

        // And they are still delivered.
        for (const ref of [bReader, bIdle, cWorker, dOwner]) await t2.send(ref.id, "cedge-go", true);
        const r = (ref: { id: string }) =>
          t2.ref<{ first: string[]; later: string[] }>(ref.id).result({ timeout: "30s" });
        assert.deepEqual(await r(bReader), { first: ["n1", "n2", "h1"], later: [] });
        assert.deepEqual(await r(bIdle), { first: [], later: ["f1", "f2", "h1"] });
        assert.deepEqual(await r(cWorker), { first: ["j1", "j2"], later: ["j3", "j4"] });
        assert.deepEqual(await r(dOwner), { first: ["d1", "d2"], later: ["d3", "d4"] });
      } finally {
        await t2.stop();
      }
    } finally {
      await db.cleanup();
    }
  });
});

// ---- 3. groups across recur ----------------------------------------------------------------

type RecurInput = { round: number; rounds: number; end: "return" | "throw" | "wait"; leaveG2At?: number };

const recurring = actor("cedge-recurring", async (ctx: ActorContext, input: RecurInput) => {
  if (input.round === 0) {
    await ctx.subscribe("cedge-tick", "direct");
    await ctx.subscribe("cedge-hello", "direct");
    await ctx.join("cedge-g1");
    await ctx.join("cedge-g2");
  }
  if (input.round === input.leaveG2At) await ctx.leave("cedge-g2");
  if (input.round < input.rounds) {
    await ctx.receive("cedge-tick");
    return ctx.recur({ ...input, round: input.round + 1 });
  }
  const seen = await ctx.members("cedge-g1");
  const hello = await ctx.receive<string>("cedge-hello", { timeout: "30s" });
  if (input.end === "throw") throw new Error("boom");
  if (input.end === "wait") {
    await ctx.join("cedge-heard"); // one more group, joined in a later generation
    await ctx.receive("cedge-tick");
  }
  return { hello: hello?.data ?? null, seen };
});

describe("groups across recur", () => {
  const t = testTroupe({ actors: [recurring] });
  after(() => t.stop());

  test("memberships survive recur; a group broadcast after recurring reaches the actor; an actor that ends leaves all its groups", async () => {
    await t.start();
    const a = await t.spawn(recurring, { round: 0, rounds: 3, end: "return", leaveG2At: 2 }, { id: "rec-a" });
    const b = await t.spawn(recurring, { round: 0, rounds: 2, end: "throw" }, { id: "rec-b" });
    const c = await t.spawn(recurring, { round: 0, rounds: 1, end: "wait" }, { id: "rec-c" });
    const all = [a.id, b.id, c.id].sort();
    const parkedIn = async (id: string, generation: number) => {
      const info = await t.get(id);
      return info?.status === "waiting" && info.generation === generation;
    };
    for (const ref of [a, b, c])
      await eventually(() => parkedIn(ref.id, 0), `${ref.id} waiting in generation 0`);
    assert.deepEqual(await t.members("cedge-g1"), all);
    assert.deepEqual(await t.members("cedge-g2"), all);

    for (let gen = 1; gen <= 3; gen++) {
      for (const [ref, rounds] of [
        [a, 3],
        [b, 2],
        [c, 1],
      ] as const) {
        if (gen > rounds) continue;
        await t.send(ref.id, "cedge-tick", gen);
        await eventually(() => parkedIn(ref.id, gen), `${ref.id} waiting in generation ${gen}`);
        assert.ok(
          (await t.members("cedge-g1")).includes(ref.id),
          `${ref.id} still in cedge-g1 after recur ${gen}`,
        );
        const inG2 = (await t.members("cedge-g2")).includes(ref.id);
        assert.equal(inG2, !(ref === a && gen >= 2), `${ref.id} in cedge-g2 after recur ${gen}`);
      }
    }
    assert.deepEqual(await t.members("cedge-g1"), all, "all three, each after its last recur");
    assert.deepEqual(await t.members("cedge-g2"), [b.id, c.id], "rec-a left cedge-g2 in a later generation");

    assert.deepEqual(await t.broadcast("cedge-g1", "cedge-hello", "hi"), { count: 3 });
    assert.deepEqual(await a.result({ timeout: "30s" }), { hello: "hi", seen: all });
    await assert.rejects(b.result({ timeout: "30s" }), (e: TroupeError) => e.code === "ACTOR_FAILED");
    await eventually(async () => (await t.members("cedge-heard")).includes(c.id), "rec-c got hello");
    await eventually(() => parkedIn(c.id, 1), "rec-c waiting after hello");
    assert.deepEqual(await t.members("cedge-g1"), [c.id], "completed and failed actors left their groups");
    await t.cancel(c.id, "enough");
    assert.equal(await c.status(), "cancelled");
    assert.deepEqual(await t.members("cedge-g1"), []);
    assert.deepEqual(await t.members("cedge-g2"), []);
    assert.deepEqual(await t.groups(), [], "no group is left with a member");
  });
});

// ---- 4. competing channels and receiveAny --------------------------------------------------

type Got = { channel: string; data: number };

/**
 * Consumes competing channels `a` and `b` until it has `n` messages (or a receive times
 * out). `pattern` picks the call for each iteration: "any" = receiveAny([a, b]), "a" / "b" =
 * receive on that channel alone.
 */
const consumer = actor(
  "cedge-consumer",
  async (
    ctx: ActorContext,
    input: {
      a: string;
      b: string;
      n: number;
      pattern: ("any" | "a" | "b")[];
      timeout: string;
      ready: string;
    },
  ) => {
    await ctx.subscribe(input.a, "competing");
    await ctx.subscribe(input.b, "competing");
    await ctx.join(input.ready);
    const got: Got[] = [];
    let misses = 0;
    for (let i = 0; got.length < input.n && misses < 3 * input.pattern.length; i++) {
      const p = input.pattern[i % input.pattern.length]!;
      const m =
        p === "any"
          ? await ctx.receiveAny([input.a, input.b], { timeout: input.timeout })
          : await ctx.receive<number>(p === "a" ? input.a : input.b, { timeout: input.timeout });
      if (m) got.push({ channel: m.channel, data: m.data as number });
      else misses++;
    }
    return got;
  },
);

/** Waits for one message on a single competing channel (receive), or on several (receiveAny). */
const single = actor("cedge-single", async (ctx: ActorContext, input: { chs: string[]; ready: string }) => {
  for (const ch of input.chs) await ctx.subscribe(ch, "competing");
  await ctx.join(input.ready);
  const m =
    input.chs.length === 1
      ? await ctx.receive<string>(input.chs[0]!, { timeout: "30s" })
      : await ctx.receiveAny(input.chs, { timeout: "30s" });
  return m ? `${m.channel}/${String(m.data)}` : null;
});

/** Messages of `ch` in id order, with whether each was claimed. */
async function claims(t: Troupe, ch: string): Promise<{ data: string; claimed: boolean }[]> {
  const { rows } = await databaseOf(t).query<{ data: Buffer; claimed: boolean }>(
    boundSql(
      t,
      "SELECT data, claimed_by IS NOT NULL AS claimed FROM {schema}.messages WHERE channel = $1 ORDER BY id",
    ),
    [ch],
  );
  return rows.map((r) => ({ data: String(decode(Buffer.from(r.data))), claimed: r.claimed }));
}

/** FIFO for a competing channel: no message is left unclaimed while a newer one was handed out. */
function assertClaimedPrefix(list: { data: string; claimed: boolean }[], ch: string): void {
  const firstUnclaimed = list.findIndex((m) => !m.claimed);
  const lastClaimed = list.map((m) => m.claimed).lastIndexOf(true);
  assert.ok(
    firstUnclaimed === -1 || lastClaimed < firstUnclaimed,
    `${ch}: ${list.find((m) => !m.claimed)?.data} is still unclaimed although the newer ` +
      `${list[lastClaimed]?.data} was claimed (${JSON.stringify(list)})`,
  );
}

function assertExactlyOnceInOrder(got: Got[], a: string, b: string, n: number): void {
  for (const ch of [a, b]) {
    const mine = got.filter((g) => g.channel === ch).map((g) => g.data);
    assert.deepEqual(
      mine,
      Array.from({ length: n }, (_, i) => i),
      `${ch}: every message once, in FIFO order`,
    );
  }
  assert.equal(got.length, 2 * n);
}

/**
 * A debug hook that, while closed, holds the worker's delivery loop right after it delivered
 * to `holdAfter`: wakeups arriving meanwhile pile up, and the next round delivers for all
 * their sources at once (as a busy worker, or the sweep, does).
 */
function deliveryGate(holdAfter: string) {
  let release: (() => void) | undefined;
  let held: Promise<void> | undefined;
  return {
    debugPoint: async (name: string, info: Record<string, unknown>) => {
      if (name === "deliver:done" && held && (info.delivered as string[]).includes(holdAfter)) await held;
    },
    /** Holds the loop at its next delivery to `holdAfter` (triggered by `trigger`), runs `meanwhile`, releases. */
    async around(t: Troupe, trigger: () => Promise<unknown>, meanwhile: () => Promise<void>) {
      held = new Promise<void>((r) => (release = r));
      await trigger();
      await eventually(async () => (await t.get(holdAfter))?.status !== "waiting", `${holdAfter} delivered`);
      await meanwhile();
      // Let the wakeups reach the held loop; through Redis they take a moment.
      if (REDIS_URL) await new Promise((r) => setTimeout(r, 300));
      held = undefined;
      release!();
    },
  };
}

describe("competing channels with receiveAny", () => {
  const gate = deliveryGate("fifo-z");
  const t = testTroupe({ actors: [consumer, single] });
  setDebugPoint(t, gate.debugPoint);
  after(() => t.stop());

  const unclaimed = (ch: string) => countMessages(t, "channel = $1 AND claimed_by IS NULL", [ch]);

  test("one consumer on receiveAny([a, b]): every message once, per-channel FIFO, nothing left unclaimed", async () => {
    await t.start();
    const [a, b, n] = ["any1-a", "any1-b", 10];
    for (let i = 0; i < n / 2; i++) {
      await t.publish(a, i); // before anyone subscribed: they wait for a consumer
      await t.publish(b, i);
    }
    const ref = await t.spawn(consumer, {
      a,
      b,
      n: 2 * n,
      pattern: ["any"],
      timeout: "10s",
      ready: "any1-ready",
    });
    await eventually(async () => (await t.members("any1-ready")).length === 1, "consumer ready");
    for (let i = n / 2; i < n; i++) {
      await t.publish(b, i);
      await t.publish(a, i);
    }
    assertExactlyOnceInOrder(await ref.result({ timeout: "60s" }), a, b, n);
    assert.equal(await unclaimed(a), 0);
    assert.equal(await unclaimed(b), 0);
  });

  test("one consumer mixing receive(a), receive(b) and receiveAny([a, b]): every message once, FIFO per channel", async () => {
    await t.start();
    const [a, b, n] = ["mix-a", "mix-b", 9];
    for (let i = 0; i < 4; i++) {
      await t.publish(a, i);
      await t.publish(b, i);
    }
    const ref = await t.spawn(consumer, {
      a,
      b,
      n: 2 * n,
      pattern: ["any", "a", "any", "b", "b", "a"],
      timeout: "1s",
      ready: "mix-ready",
    });
    await eventually(async () => (await t.members("mix-ready")).length === 1, "consumer ready");
    for (let i = 4; i < n; i++) {
      await t.publish(a, i);
      await t.publish(b, i);
    }
    assertExactlyOnceInOrder(await ref.result({ timeout: "60s" }), a, b, n);
    assert.equal(await unclaimed(a), 0);
    assert.equal(await unclaimed(b), 0);
  });

  test("three consumers on receiveAny([a, b]) and one on receive(a): every message once, each consumer FIFO per channel", async () => {
    await t.start();
    const [a, b, n] = ["multi-a", "multi-b", 30];
    const refs = await Promise.all([
      ...[0, 1, 2].map((i) =>
        t.spawn(
          consumer,
          { a, b, n: 2 * n, pattern: ["any"], timeout: "2s", ready: "multi-ready" },
          { id: `multi-any-${i}` },
        ),
      ),
      t.spawn(
        consumer,
        { a, b, n: 2 * n, pattern: ["a"], timeout: "2s", ready: "multi-ready" },
        { id: "multi-a-only" },
      ),
    ]);
    await eventually(async () => (await t.members("multi-ready")).length === 4, "consumers ready");
    await Promise.all([
      (async () => {
        for (let i = 0; i < n; i++) await t.publish(a, i);
      })(),
      (async () => {
        for (let i = 0; i < n; i++) await t.publish(b, i);
      })(),
    ]);
    const results = await Promise.all(refs.map((r) => r.result({ timeout: "90s" })));
    for (const got of results)
      for (const ch of [a, b]) {
        const mine = got.filter((g) => g.channel === ch).map((g) => g.data);
        assert.deepEqual(
          mine,
          [...mine].sort((x, y) => x - y),
          `${ch}: one consumer's messages in FIFO order`,
        );
      }
    assert.ok(
      results[3]!.every((g) => g.channel === a),
      "receive(a) only gets messages of a",
    );
    assertExactlyOnceInOrder(
      results.flat().sort((x, y) => x.data - y.data),
      a,
      b,
      n,
    );
    assert.equal(await unclaimed(a), 0);
    assert.equal(await unclaimed(b), 0);
  });

  test("one delivery round over two sources: a consumer on receiveAny([a, b]) taking b does not make a's oldest message wait behind a newer one", async () => {
    await t.start();
    // x (receiveAny([a, b])) sorts before y (receive(a)): in the delivery round, x is paired
    // with a's oldest message (fifo-a1) and with b's (fifo-b1), takes the older b1, and must
    // not leave a1 unclaimed while y gets a2.
    const x = await t.spawn(single, { chs: ["fifo-a", "fifo-b"], ready: "fifo-ready" }, { id: "fifo-x" });
    const y = await t.spawn(single, { chs: ["fifo-a"], ready: "fifo-ready" }, { id: "fifo-y" });
    const z = await t.spawn(single, { chs: ["fifo-zc"], ready: "fifo-ready" }, { id: "fifo-z" });
    await eventually(async () => (await t.members("fifo-ready")).length === 3, "consumers ready");
    await eventually(
      async () => (await Promise.all([x, y, z].map((r) => r.status()))).every((s) => s === "waiting"),
      "all three waiting",
    );
    await gate.around(
      t,
      () => t.publish("fifo-zc", "z1"),
      async () => {
        await t.publish("fifo-b", "b1");
        await t.publish("fifo-a", "a1");
        await t.publish("fifo-a", "a2");
      },
    );
    assert.equal(await z.result({ timeout: "30s" }), "fifo-zc/z1");
    const gotX = await x.result({ timeout: "30s" });
    const gotY = await y.result({ timeout: "30s" });
    assert.ok(gotX === "fifo-b/b1" || gotX === "fifo-a/a1", `x got ${gotX}`);
    assertClaimedPrefix(await claims(t, "fifo-a"), "fifo-a");
    assert.equal(
      gotY,
      gotX === "fifo-a/a1" ? "fifo-a/a2" : "fifo-a/a1",
      "y gets the oldest message left on a",
    );
  });
});

describe("competing delivery over several sources (storage level)", () => {
  test("deliver([a, b]) pairs each waiting consumer with the oldest unclaimed messages: no newer message handed out before an older one", async () => {
    const db = await lives({ actors: [single] });
    try {
      const t1 = db.make();
      await t1.start();
      await t1.spawn(single, { chs: ["sfifo-a", "sfifo-b"], ready: "sfifo-ready" }, { id: "sfifo-x" });
      await t1.spawn(single, { chs: ["sfifo-a"], ready: "sfifo-ready" }, { id: "sfifo-y" });
      await eventually(
        async () =>
          (await t1.get("sfifo-x"))?.status === "waiting" && (await t1.get("sfifo-y"))?.status === "waiting",
        "both waiting",
      );
      await t1.stop();

      // No worker anywhere: the messages stay pending until this test delivers them itself.
      const t2 = db.make({ worker: false });
      await t2.start();
      try {
        await t2.publish("sfifo-b", "b1");
        await t2.publish("sfifo-a", "a1");
        await t2.publish("sfifo-a", "a2");
        const delivered = await storageOf(t2).delivery.deliver(
          ["sfifo-a", "sfifo-b"],
          "cedge-test-worker",
          5000,
          10,
          false,
          ["cedge-single"],
        );
        const got = Object.fromEntries(
          delivered.map((d) => {
            const m = decode<Message<string>>(d.entry.result);
            return [d.row.id, `${m.channel}/${m.data}`];
          }),
        );
        assertClaimedPrefix(await claims(t2, "sfifo-a"), "sfifo-a");
        assert.deepEqual(
          got,
          got["sfifo-x"] === "sfifo-a/a1"
            ? { "sfifo-x": "sfifo-a/a1", "sfifo-y": "sfifo-a/a2" }
            : { "sfifo-x": "sfifo-b/b1", "sfifo-y": "sfifo-a/a1" },
        );
      } finally {
        await t2.stop();
      }
    } finally {
      await db.cleanup();
    }
  });
});

describe("competing channels with receiveAny: a delivery round skips nobody", () => {
  const gate = deliveryGate("skip-z");
  // A long poll interval: the sweep (the safety net for lost wakeups) does not run during the test.
  const t = testTroupe({ actors: [single], pollInterval: "30s" });
  setDebugPoint(t, gate.debugPoint);
  after(() => t.stop());

  test("two consumers on receiveAny([a, b]), one message on each: both are delivered at once, neither is left to the sweep", async () => {
    await t.start();
    const x = await t.spawn(single, { chs: ["skip-a", "skip-b"], ready: "skip-ready" }, { id: "skip-x" });
    const y = await t.spawn(single, { chs: ["skip-a", "skip-b"], ready: "skip-ready" }, { id: "skip-y" });
    const z = await t.spawn(single, { chs: ["skip-zc"], ready: "skip-ready" }, { id: "skip-z" });
    await eventually(
      async () => (await Promise.all([x, y, z].map((r) => r.status()))).every((s) => s === "waiting"),
      "all three waiting",
    );
    await gate.around(
      t,
      () => t.publish("skip-zc", "z1"),
      async () => {
        await t.publish("skip-a", "a1");
        await t.publish("skip-b", "b1");
      },
    );
    // Well before the next sweep (30 s): only the delivery round itself can have handed out both.
    const got = await Promise.all([x.result({ timeout: "5s" }), y.result({ timeout: "5s" })]);
    assert.deepEqual(got.sort(), ["skip-a/a1", "skip-b/b1"]);
  });
});

// ---- 5. group broadcast from outside with an idempotency key ------------------------------

/** Joins `group`, then collects what arrives in its "cedge-bk" mailbox until "end". */
const bkMember = actor("cedge-bk-member", async (ctx: ActorContext, input: { group: string }) => {
  await ctx.subscribe("cedge-bk", "direct");
  await ctx.join(input.group);
  const got: string[] = [];
  for (;;) {
    const m = await ctx.receive<string>("cedge-bk", { timeout: "30s" });
    if (!m || m.data === "end") return got;
    got.push(m.data);
  }
});

describe("troupe.broadcast with idempotencyKey", () => {
  const t = testTroupe({ actors: [bkMember] });
  after(() => t.stop());
  const bkMessages = () => countMessages(t, "channel LIKE 'cedge-bk:%'");

  test("a repeat with the same key returns the first count and writes nothing, even after the membership changed", async () => {
    await t.start();
    const m1 = await t.spawn(bkMember, { group: "bk-room" }, { id: "bk-1" });
    const m2 = await t.spawn(bkMember, { group: "bk-room" }, { id: "bk-2" });
    await eventually(async () => (await t.members("bk-room")).length === 2, "two members");
    assert.deepEqual(await t.broadcast("bk-room", "cedge-bk", "once", { idempotencyKey: "k1" }), {
      count: 2,
    });
    assert.equal(await bkMessages(), 2);
    assert.deepEqual(await t.broadcast("bk-room", "cedge-bk", "once", { idempotencyKey: "k1" }), {
      count: 2,
    });
    assert.equal(await bkMessages(), 2, "the repeat wrote nothing");

    const m3 = await t.spawn(bkMember, { group: "bk-room" }, { id: "bk-3" });
    await eventually(async () => (await t.members("bk-room")).length === 3, "three members");
    assert.deepEqual(
      await t.broadcast("bk-room", "cedge-bk", "once", { idempotencyKey: "k1" }),
      { count: 2 },
      "still the first result, and the newcomer gets nothing",
    );
    assert.equal(await bkMessages(), 2);
    // Concurrent repeats of a new key: one of them writes, all return its count.
    const same = await Promise.all(
      [0, 1, 2, 3].map(() => t.broadcast("bk-room", "cedge-bk", "twice", { idempotencyKey: "k2" })),
    );
    assert.deepEqual(same, Array(4).fill({ count: 3 }));
    assert.equal(await bkMessages(), 5);
    // Without a key, every call writes.
    assert.deepEqual(await t.broadcast("bk-room", "cedge-bk", "plain"), { count: 3 });
    assert.deepEqual(await t.broadcast("bk-room", "cedge-bk", "plain"), { count: 3 });
    assert.equal(await bkMessages(), 11);
    await t.broadcast("bk-room", "cedge-bk", "end");

    assert.deepEqual(await m1.result({ timeout: "30s" }), ["once", "twice", "plain", "plain"]);
    assert.deepEqual(await m2.result({ timeout: "30s" }), ["once", "twice", "plain", "plain"]);
    assert.deepEqual(await m3.result({ timeout: "30s" }), ["twice", "plain", "plain"]);
  });

  test("the key is per group and channel, and does not collide with a send's key to the same mailbox", async () => {
    await t.start();
    const a = await t.spawn(bkMember, { group: "bk-left" }, { id: "bk-a" });
    await eventually(async () => (await t.members("bk-left")).length === 1, "member joined");
    await t.send(a.id, "cedge-bk", "sent", { idempotencyKey: "k" });
    assert.deepEqual(await t.broadcast("bk-left", "cedge-bk", "left", { idempotencyKey: "k" }), { count: 1 });
    assert.deepEqual(await t.broadcast("bk-empty", "cedge-bk", "nobody", { idempotencyKey: "k" }), {
      count: 0,
    });
    assert.deepEqual(await t.broadcast("bk-left", "cedge-bk2", "other channel", { idempotencyKey: "k" }), {
      count: 1,
    });
    await t.send(a.id, "cedge-bk", "end");
    assert.deepEqual(await a.result({ timeout: "30s" }), ["sent", "left"]);
    assert.equal(await countMessages(t, "channel = 'cedge-bk2:bk-a'"), 1);
  });

  test("a bad idempotencyKey is VALIDATION and writes nothing", async () => {
    await t.start();
    const before = await countMessages(t);
    await t.spawn(bkMember, { group: "bk-bad" }, { id: "bk-bad-1" });
    await eventually(async () => (await t.members("bk-bad")).length === 1, "member joined");
    for (const key of ["", "a b", "x".repeat(256), "tab\there", 42, null]) {
      assert.equal(
        await codeOf(() => t.broadcast("bk-bad", "cedge-bk", 1, { idempotencyKey: key as string })),
        "VALIDATION",
        `key ${JSON.stringify(key)}`,
      );
    }
    assert.equal(await countMessages(t), before);
    assert.deepEqual(await t.broadcast("bk-bad", "cedge-bk", 1, { idempotencyKey: "y".repeat(255) }), {
      count: 1,
    });
  });
});
