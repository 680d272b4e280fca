import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import pg from "pg";
import { decode, encode } from "../src/codec.js";
import { setDebugPoint } from "../src/internal/debug-points.js";
import { TroupeError, actor, type ActorContext } from "../src/index.js";
import { PG_URL, eventually, needsPostgres, restartable, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

const echo = actor("echo", async (ctx: ActorContext, input: { n: number }) => {
  await ctx.subscribe("in", "direct");
  let sum = 0;
  for (let i = 0; i < input.n; i++) {
    const m = await ctx.receive<number>("in");
    sum += await ctx.step("add", () => m!.data);
  }
  return sum;
});

const waiter = actor("waiter", async (ctx: ActorContext, input: { ch: string }) => {
  await ctx.subscribe(input.ch, "competing");
  const m = await ctx.receive<string>(input.ch, { timeout: "1h" });
  return m?.data ?? null;
});

describe("resuming does not pay for the whole history", () => {
  const t = testTroupe({ actors: [echo] });
  after(() => t.stop());

  test("a long-lived receiver is resumed in memory, not replayed, for every message", async () => {
    await t.start();
    const n = 60;
    const ref = await t.spawn(echo, { n });
    for (let i = 1; i <= n; i++) {
      // Send only once the actor is parked, so each message goes through the resume path.
      await eventually(
        async () => (await parkedAfter(t, ref.id)) === i - 1,
        `actor parked after consuming message ${i - 1}`,
      );
      await t.send(ref.id, "in", i);
    }
    assert.equal(await ref.result({ timeout: "30s" }), (n * (n + 1)) / 2);
    const stats = t.workerStats()!;
    assert.equal(stats.replays, 1, "only the first run started from the journal");
    assert.ok(stats.resumes >= n, `resumed in memory ${stats.resumes} times`);
  });
});

describe("no lost wakeup", () => {
  test("a publish landing between the pending check and the wait registration is delivered without a timeout", async () => {
    let fired = false;
    let publishing: Promise<unknown> | undefined;
    const probe = PG_URL ? new pg.Client({ connectionString: PG_URL }) : undefined;
    await probe?.connect();
    const t = testTroupe({
      actors: [waiter],
      pollInterval: "1h", // no polling and no sweep: only the wakeup can deliver in time
    });
    setDebugPoint(t, async (name, info) => {
      if (name !== "receive:before-wait" || fired || !(info.channels as string[]).includes("race")) return;
      fired = true;
      // Publish from outside exactly inside the window and let it get as far as it can.
      publishing = t.publish("race", "in-the-window");
      await Promise.race([publishing, blockedOnChannelLock(probe)]);
    });
    try {
      await t.start();
      const ref = await t.spawn(waiter, { ch: "race" });
      assert.equal(await ref.result({ timeout: "20s" }), "in-the-window");
      assert.ok(fired, "the window was hit");
      await publishing;
    } finally {
      await t.stop();
      await probe?.end();
    }
  });

  test(
    "a message for an actor locked at delivery time is delivered by the sweep",
    { skip: needsPostgres },
    async () => {
      const attempts: { sources: string[]; delivered: string[] }[] = [];
      const t = testTroupe({
        actors: [waiter],
        pollInterval: "200ms",
      });
      setDebugPoint(t, (name, info) => {
        if (name === "deliver:done") attempts.push(info as { sources: string[]; delivered: string[] });
      });
      const locker = new pg.Client({ connectionString: PG_URL });
      await locker.connect();
      try {
        await t.start();
        const ref = await t.spawn(waiter, { ch: "locked" });
        await eventually(async () => (await t.get(ref.id))?.status === "waiting", "waiter parked");
        await locker.query("BEGIN");
        await locker.query(`SELECT 1 FROM "${storageOf(t).schema}".actors WHERE id = $1 FOR UPDATE`, [
          ref.id,
        ]);
        await t.publish("locked", "later");
        await eventually(
          () => attempts.some((a) => a.sources.includes("locked") && a.delivered.length === 0),
          "a delivery attempt that skipped the locked actor",
        );
        assert.equal((await t.get(ref.id))?.status, "waiting");
        await locker.query("COMMIT");
        assert.equal(await ref.result({ timeout: "20s" }), "later");
      } finally {
        await locker.query("ROLLBACK").catch(() => {});
        await locker.end();
        await t.stop();
      }
    },
  );
});

describe("waiters nobody was told about", () => {
  // Found by the randomized invariant run: after a worker was killed, its parked
  // subscribers stayed sticky to it and were never delivered again — hints skip actors
  // sticky to another worker, and the poll's sweep never ran because the claim started
  // just before it held every free slot.

  test("a waiter whose suspended execution lived on a worker that died is delivered by another", async () => {
    const t = testTroupe({ actors: [waiter] });
    try {
      await t.start();
      const ref = await t.spawn(waiter, { ch: "orphaned" });
      await eventually(async () => (await t.get(ref.id))?.status === "waiting", "waiter parked");
      // As if it had parked on a worker that is gone (no heartbeat at all).
      await databaseOf(t).query(
        boundSql(t, "UPDATE {schema}.actors SET sticky_worker = 'a-worker-that-died' WHERE id = $1"),
        [ref.id],
      );
      await t.publish("orphaned", "still delivered");
      assert.equal(await ref.result({ timeout: "20s" }), "still delivered");
    } finally {
      await t.stop();
    }
  });

  test("every worker's poll sweeps for lost wakeups, also when it is not the leader", async () => {
    const t = testTroupe({ actors: [waiter], pollInterval: "100ms" });
    try {
      await t.start();
      // Someone else leads: no hints from the background loop, only this worker's own sweep.
      await databaseOf(t).query(
        boundSql(
          t,
          `
          INSERT INTO {schema}.system_locks (name, owner, expires_at) VALUES ('leader', 'someone-else', now() + interval '1 hour')
          ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at`,
        ),
      );
      await eventually(() => t.workerStats()?.leader === false, "this worker no longer leads");
      const ref = await t.spawn(waiter, { ch: "unannounced" });
      await eventually(async () => (await t.get(ref.id))?.status === "waiting", "waiter parked");
      // A message written without any wakeup (as if the hint was lost on the way).
      await storageOf(t).messages.insert(
        { to: { source: "unannounced", directTo: null }, data: encode("found by the sweep"), metadata: {} },
        { by: "client" },
      );
      assert.equal(await ref.result({ timeout: "20s" }), "found by the sweep");
    } finally {
      await t.stop();
    }
  });
});

/** How many messages the actor had consumed when it last parked; -1 while it runs. One snapshot for both facts. */
async function parkedAfter(t: ReturnType<typeof testTroupe>, id: string): Promise<number> {
  const { rows } = await databaseOf(t).query<{ n: number }>(
    boundSql(
      t,
      `
      SELECT CASE WHEN a.status = 'waiting' THEN
               (SELECT count(*)::int FROM {schema}.messages m WHERE m.channel = 'in:' || a.id AND m.claimed_by IS NOT NULL)
             ELSE -1 END AS n
        FROM {schema}.actors a WHERE a.id = $1`,
    ),
    [id],
  );
  return rows[0]?.n ?? -1;
}

/** On the real server: until a publisher is queued on the channel's advisory lock. PGlite runs one statement at a time. */
async function blockedOnChannelLock(probe: pg.Client | undefined): Promise<void> {
  if (!probe) return new Promise((r) => setTimeout(r, 100));
  await eventually(
    async () => {
      const { rows } = await probe.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
      );
      return rows[0]!.n > 0;
    },
    "publisher waiting on the channel lock",
    5000,
  );
}

describe("replay after a restart", () => {
  let published = 0;
  const once = actor("once", async (ctx: ActorContext) => {
    await ctx.subscribe("quiet-ch", "broadcast");
    const first = await ctx.receive("quiet-ch", { timeout: "50ms" });
    await ctx.publish("announcements", { hello: true });
    published++;
    await ctx.join("once-group");
    await ctx.sleep("700ms");
    return { first, members: await ctx.members("once-group") };
  });

  test("receive timeouts replay as null, and publish/join are not repeated", async () => {
    const db = await restartable();
    const a = db.make({ actors: [once] });
    try {
      await a.start();
      const ref = await a.spawn(once, {}, { id: "once-1" });
      await eventually(
        async () => (await a.get(ref.id))?.status === "waiting" && published === 1,
        "parked in its sleep",
      );
      await a.stop();
      const b = db.make({ actors: [once] });
      await b.start();
      // A message now would change a live receive; the replay must still see the timeout.
      await b.publish("quiet-ch", "too late");
      try {
        assert.deepEqual(await b.ref(ref.id).result({ timeout: "20s" }), {
          first: null,
          members: ["once-1"],
        });
        assert.equal(published, 2, "the code after the publish re-ran on replay…");
        const { rows } = await databaseOf(b).query<{ n: number }>(
          boundSql(b, "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'announcements'"),
        );
        assert.equal(rows[0]!.n, 1, "…but the publish itself happened once");
        assert.deepEqual(await b.members("once-group"), [], "finished actors leave their groups");
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop();
      await db.cleanup();
    }
  });
});

describe("replay of delivered messages and of values drawn around a failed effect", () => {
  const reader = actor("replay-reader", async (ctx: ActorContext) => {
    await ctx.subscribe("rp-bc", "broadcast");
    await ctx.subscribe("rp-comp", "competing");
    await ctx.subscribe("rp-inbox", "direct");
    await ctx.join("rp-ready");
    const got = [];
    for (const ch of ["rp-bc", "rp-comp", "rp-inbox"]) {
      const m = await ctx.receive<string>(ch, { timeout: "20s" });
      got.push({ ch: m?.channel, data: m?.data, id: m?.id, meta: m?.metadata });
    }
    // A value drawn just before an effect that fails must be journaled with the error.
    const token = await ctx.uuid();
    const failed = await ctx.send("rp-ghost", "rp-inbox", 1).then(
      () => "sent",
      (e: TroupeError) => e.code,
    );
    await ctx.sleep("700ms");
    return { got, token, failed };
  });

  test("broadcast, competing and direct deliveries and a uuid drawn before a failed send replay identically", async () => {
    const db = await restartable();
    const a = db.make({ actors: [reader] });
    try {
      await a.start();
      const ref = await a.spawn(reader, {}, { id: "rp-1" });
      await eventually(async () => (await a.members("rp-ready")).length === 1, "subscribed");
      await a.publish("rp-bc", "b1", { metadata: { k: 1 } });
      await a.publish("rp-comp", "c1");
      await a.send(ref.id, "rp-inbox", "d1");
      await eventually(async () => {
        const row = await storageOf(a).actors.get(ref.id);
        return row?.status === "waiting" && row.waitKind === "sleep";
      }, "parked in its sleep");
      const before = await storageOf(a).journal.page(ref.id, 0, 100);
      await a.stop();
      const b = db.make({ actors: [reader] });
      await b.start();
      try {
        // New messages now would change live receives; the replay must return the journaled ones.
        await b.publish("rp-bc", "b2");
        await b.publish("rp-comp", "c2");
        await b.send(ref.id, "rp-inbox", "d2");
        const out = (await b.ref(ref.id).result({ timeout: "20s" })) as {
          got: { ch: string; data: string; meta: Record<string, unknown> }[];
          token: string;
          failed: string;
        };
        assert.deepEqual(
          out.got.map((g) => [g.ch, g.data, g.meta]),
          [
            ["rp-bc", "b1", { k: 1 }],
            ["rp-comp", "c1", {}],
            ["rp-inbox", "d1", {}],
          ],
        );
        assert.equal(out.failed, "NOT_FOUND");
        const uuidEntry = before.find((e) => e.kind === "uuid");
        assert.ok(uuidEntry, "the uuid drawn before the failed send was journaled");
        assert.equal(out.token, decode(uuidEntry.result), "the replay returned the same uuid");
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop();
      await db.cleanup();
    }
  });
});

describe("fan-out beyond a worker's capacity", () => {
  const sub = actor("fan-sub", async (ctx: ActorContext, input: { n: number }) => {
    await ctx.subscribe("fan", "broadcast");
    await ctx.join("fan-ready");
    const got: number[] = [];
    for (let i = 0; i < input.n; i++) {
      const m = await ctx.receive<number>("fan", { timeout: "30s" });
      if (!m) break;
      got.push(m.data);
    }
    return got;
  });

  test("every subscriber gets every broadcast even when subscribers far outnumber the concurrency", async () => {
    const t = testTroupe({ actors: [sub], concurrency: 4, pollInterval: "200ms" });
    try {
      await t.start();
      const refs = await Promise.all(
        Array.from({ length: 40 }, (_, i) => t.spawn(sub, { n: 3 }, { id: `fan-${i}` })),
      );
      await eventually(async () => (await t.members("fan-ready")).length === 40, "all subscribed", 60_000);
      for (let i = 1; i <= 3; i++) await t.publish("fan", i);
      for (const r of refs) assert.deepEqual(await r.result({ timeout: "60s" }), [1, 2, 3]);
    } finally {
      await t.stop();
    }
  });
});
