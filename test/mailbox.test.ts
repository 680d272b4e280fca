/**
 * Mailbox isolation: a direct message reaches only the actor it was sent to, whatever ':'
 * the channel and actor names contain. With the old key "<channel>:<actorId>",
 * send("a:a", "x") and actor "a" reading "x:a" shared the mailbox "x:a:a", and the second
 * actor read the first one's mail. Also: migration 0006 re-keys old rows so that they are
 * still delivered to the right actor.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { encode } from "../src/codec.js";
import { actor, type Troupe } from "../src/index.js";
import type { Database } from "../src/storage/database.js";
import { channelOfMailbox, mailbox, mailboxKeySql, mailboxPrefix } from "../src/storage/mailbox.js";
import { migrate } from "../src/storage/migrate.js";
import { PgDatabase } from "../src/storage/pg-database.js";
import { PGliteDatabase } from "../src/storage/pglite-database.js";
import { bindSchema } from "../src/storage/sql.js";
import { PG_URL, dropSchema, eventually, freshSchema, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

/** Joins `group` if given, subscribes direct to `channel`, returns the first message's data. */
const reader = actor("mb-reader", async (ctx, input: { channel: string; group?: string }) => {
  if (input.group) await ctx.join(input.group);
  await ctx.subscribe(input.channel, "direct");
  const m = await ctx.receive(input.channel);
  return m!.data;
});

/** Reads the broadcast channel "news:desk" forever. */
const follower = actor("mb-follower", async (ctx) => {
  await ctx.subscribe("news:desk", "broadcast");
  for (;;) await ctx.receive("news:desk");
});

type Path = "ctx.send" | "tx.send" | "ctx.broadcast";
const sender = actor(
  "mb-sender",
  async (ctx, input: { path: Path; to: string; channel: string; group: string }) => {
    if (input.path === "ctx.send") await ctx.send(input.to, input.channel, "secret");
    else if (input.path === "ctx.broadcast") await ctx.broadcast(input.group, input.channel, "secret");
    else await ctx.transaction("t", (tx) => tx.send(input.to, input.channel, "secret"));
    return "sent";
  },
);

describe("mailbox isolation", () => {
  const troupes: Troupe[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    await Promise.all(troupes.map((t) => t.stop()));
    for (const c of cleanups) await c();
  });

  async function started(): Promise<Troupe> {
    const t = testTroupe({ actors: [reader, sender, follower] });
    troupes.push(t);
    await t.start();
    return t;
  }

  const paths = [
    "troupe.send",
    "troupe.broadcast",
    "troupe.broadcast+key",
    "ctx.send",
    "tx.send",
    "ctx.broadcast",
  ] as const;

  for (const [k, path] of paths.entries()) {
    test(`${path}: a channel name ending in ":<id>" does not open another actor's mailbox`, async () => {
      const t = await started();
      // victim "sK:sK" reads channel "cK"; snooper "sK" reads channel "cK:sK". Old key of both: "cK:sK:sK".
      const victim = `s${k}:s${k}`;
      const snooper = `s${k}`;
      const group = `g${k}`;
      const v = await t.spawn(reader, { channel: `c${k}`, group }, { id: victim });
      const s = await t.spawn(reader, { channel: `c${k}:s${k}` }, { id: snooper });
      await eventually(
        async () => (await v.status()) === "waiting" && (await s.status()) === "waiting",
        "both readers to wait",
      );
      if (path === "troupe.send") await t.send(victim, `c${k}`, "secret");
      else if (path === "troupe.broadcast") await t.broadcast(group, `c${k}`, "secret");
      else if (path === "troupe.broadcast+key")
        await t.broadcast(group, `c${k}`, "secret", { idempotencyKey: `key-${k}` });
      else {
        const from = await t.spawn(sender, { path, to: victim, channel: `c${k}`, group });
        assert.equal(await from.result({ timeout: "30s" }), "sent");
      }
      await t.send(snooper, `c${k}:s${k}`, "marker");
      assert.equal(await s.result({ timeout: "30s" }), "marker", "the snooper read the victim's mail");
      assert.equal(await v.result({ timeout: "30s" }), "secret");
    });
  }

  test("idempotency keys never match across mailboxes, nor between a mailbox and a channel", async () => {
    const t = await started();
    const a = await t.spawn(reader, { channel: "x:i" }, { id: "i" });
    const aa = await t.spawn(reader, { channel: "x" }, { id: "i:i" });
    const first = await t.send("i:i", "x", "for i:i", { idempotencyKey: "k" });
    const second = await t.send("i", "x:i", "for i", { idempotencyKey: "k" });
    assert.notEqual(second.id, first.id, "a send to another mailbox was taken for a repeat");
    // mailbox("room", "lobby") is "room:lobby", the name of a channel too
    const published = await t.publish("room:lobby", "news", { idempotencyKey: "k2" });
    const lobby = await t.spawn(reader, { channel: "room" }, { id: "lobby" });
    const sent = await t.send("lobby", "room", "hello", { idempotencyKey: "k2" });
    assert.notEqual(sent.id, published.id, "a send was taken for a repeat of a publish");
    assert.equal((await t.send("lobby", "room", "again", { idempotencyKey: "k2" })).id, sent.id);
    assert.equal(await lobby.result({ timeout: "30s" }), "hello");
    assert.equal(await a.result({ timeout: "30s" }), "for i");
    assert.equal(await aa.result({ timeout: "30s" }), "for i:i");
  });

  test("retention: a mailbox whose key equals a broadcast channel's name does not pin that channel's read messages", async () => {
    const t = await started();
    // mailbox("news", "desk") = "news:desk", also the name of a broadcast channel
    const fan = await t.spawn(follower, {}, { id: "fan" });
    const desk = await t.spawn(reader, { channel: "news" }, { id: "desk" });
    await eventually(
      async () => (await fan.status()) === "waiting" && (await desk.status()) === "waiting",
      "both to wait",
    );
    await t.publish("news:desk", "headline");
    await eventually(async () => {
      const { rows } = await databaseOf(t).query<{ n: number }>(
        boundSql(
          t,
          "SELECT count(*)::int AS n FROM {schema}.subscriptions WHERE actor_id = 'fan' AND cursor > 0 AND wait_seq IS NOT NULL",
        ),
      );
      return rows[0]!.n === 1;
    }, "the follower to read it and wait again");
    assert.equal(await storageOf(t).messages.deleteRead(0, 100), 1, "the read broadcast message was kept");
    await t.send("desk", "news", "memo");
    assert.equal(await desk.result({ timeout: "30s" }), "memo");
  });

  test("the event stream names the channel a direct message was sent on, ':' and '%' included", async () => {
    const t = await started();
    const r = await t.spawn(reader, { channel: "q:50%" }, { id: "q" });
    await t.send("q", "q:50%", "hi");
    assert.equal(await r.result({ timeout: "30s" }), "hi");
    // The stream holds back events behind transactions still open elsewhere on the server
    // (other test files share it) for up to its foreign-transaction grace: wait for it.
    const sentChannels = async () =>
      (await t.readStream({ limit: 1000 })).events
        .filter((e) => e.kind === "message" && e.to === "q")
        .map((e) => (e.kind === "message" ? e.channel : null));
    await eventually(async () => (await sentChannels()).length > 0, "the message in the stream", 30_000);
    assert.deepEqual(await sentChannels(), ["q:50%"]);
  });

  test("the key is injective, reversible, and the same in TypeScript and SQL", async () => {
    const part = fc.string({ unit: fc.constantFrom(":", "%", "3", "A", "2", "5", "a"), minLength: 1 });
    fc.assert(
      fc.property(part, part, part, part, (c1, a1, c2, a2) => {
        assert.equal(mailbox(c1, a1) === mailbox(c2, a2), c1 === c2 && a1 === a2);
        assert.equal(channelOfMailbox(mailbox(c1, a1), a1), c1);
      }),
      { seed: 10, numRuns: 2000 },
    );
    const t = await started();
    const pairs = [
      ["x:a", "a"],
      ["x", "a:a"],
      ["%3A", "b"],
      ["%", "x"],
      ["a%3Ab:", "c%"],
      ["orders", "ana"],
    ] as const;
    for (const [c, a] of pairs) {
      const { rows } = await databaseOf(t).query<{ k: string }>(
        `SELECT ${mailboxKeySql("$1", "$2::text")} AS k`,
        [mailboxPrefix(c), a],
      );
      assert.equal(rows[0]!.k, mailbox(c, a), `${c} / ${a}`);
    }
    assert.equal(mailbox("orders", "ana"), "orders:ana", "names without ':' or '%' keep their old key");
  });

  test("migration 0006 re-keys old direct messages and subscriptions: each still reaches its actor", async () => {
    const schema = freshSchema("mb");
    const dir = PG_URL ? undefined : await mkdtemp(join(tmpdir(), "troupe-mb-"));
    cleanups.push(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
      else await dropSchema(schema);
    });
    // A schema at migration 0005 with rows as the old code wrote them.
    const old: Database = PG_URL ? new PgDatabase(PG_URL, { poolSize: 1 }) : await PGliteDatabase.open(dir);
    try {
      assert.equal((await migrate(old, schema, { upTo: 5 })).version, 5);
      const q = (text: string, params: unknown[] = []) => old.query(bindSchema(schema, text), params);
      const readers = [
        { id: "a", channel: "x:a", oldKey: "x:a:a" },
        { id: "a:a", channel: "x", oldKey: "x:a:a" },
        { id: "p", channel: "50%", oldKey: "50%:p" },
        { id: "b", channel: "plain", oldKey: "plain:b" },
      ];
      for (const r of readers) {
        await q(
          "INSERT INTO {schema}.actors (id, actor, status, input) VALUES ($1, 'mb-reader', 'running', $2)",
          [r.id, encode({ channel: r.channel })],
        );
        await q("INSERT INTO {schema}.channels (name, mode) VALUES ($1, 'direct') ON CONFLICT DO NOTHING", [
          r.channel,
        ]);
        await q(
          "INSERT INTO {schema}.subscriptions (actor_id, channel, mode, source) VALUES ($1, $2, 'direct', $3)",
          [r.id, r.channel, r.oldKey],
        );
      }
      // Oldest first: under the shared old key, "a" (first by id) would have taken this one.
      for (const r of [readers[1]!, readers[0]!, readers[2]!, readers[3]!])
        await q(
          "INSERT INTO {schema}.messages (channel, data, direct_to, idempotency_key) VALUES ($1, $2, $3, $4)",
          [r.oldKey, encode(`for ${r.id}`), r.id, r.id === "a:a" ? "k" : null],
        );
    } finally {
      await old.close();
    }

    const t = testTroupe({ actors: [reader], schema, database: PG_URL ?? dir });
    troupes.push(t);
    await t.start();
    const { rows } = await databaseOf(t).query<{ direct_to: string; channel: string }>(
      boundSql(t, "SELECT direct_to, channel FROM {schema}.messages ORDER BY id"),
    );
    assert.deepEqual(
      rows.map((r) => [r.direct_to, r.channel]),
      [
        ["a:a", mailbox("x", "a:a")],
        ["a", mailbox("x:a", "a")],
        ["p", mailbox("50%", "p")],
        ["b", "plain:b"],
      ],
    );
    const subs = await databaseOf(t).query<{ actor_id: string; source: string }>(
      boundSql(t, "SELECT actor_id, source FROM {schema}.subscriptions ORDER BY actor_id"),
    );
    assert.deepEqual(
      subs.rows.map((r) => [r.actor_id, r.source]),
      [
        ["a", mailbox("x:a", "a")],
        ["a:a", mailbox("x", "a:a")],
        ["b", "plain:b"],
        ["p", mailbox("50%", "p")],
      ],
    );
    for (const id of ["a", "a:a", "p", "b"]) {
      const info = await eventually(async () => {
        const i = await t.get(id);
        return i?.status === "completed" ? i : null;
      }, `${id} to complete`);
      assert.equal(info!.output, `for ${id}`, `${id} got the wrong message`);
    }
  });
});
