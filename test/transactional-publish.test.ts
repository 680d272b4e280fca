import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { TroupeError, actor, channel, type ActorContext, type Message } from "../src/index.js";
import { eventually, restartable, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

/** Subscribes in `mode`, joins `group` (also its readiness signal), then collects `n` messages. */
const reader = actor(
  "tx-reader",
  async (
    ctx: ActorContext,
    input: { ch: string; mode: "broadcast" | "direct"; group: string; n: number },
  ) => {
    await ctx.subscribe(input.ch, input.mode);
    await ctx.join(input.group);
    const got: unknown[] = [];
    for (let i = 0; i < input.n; i++) {
      const m: Message<unknown> | null = await ctx.receive(input.ch, { timeout: "30s" });
      if (!m) break;
      got.push({ data: m.data, sender: m.sender ?? null });
    }
    return got;
  },
);

/**
 * One transactional step that writes a row of its own plus a publish, a direct send, a group
 * broadcast and an outbox event. `fail` makes the callback throw after all of them.
 */
const writer = actor(
  "tx-writer",
  async (ctx: ActorContext, input: { table: string; to: string; group: string; fail?: boolean }) => {
    return ctx.transaction("write-all", async (tx) => {
      await tx.query(`INSERT INTO ${input.table} (note) VALUES ('written')`);
      const p = await tx.publish("tx-news", { n: 1 }, { metadata: { via: "tx" } });
      const s = await tx.send(input.to, "tx-inbox", { n: 2 });
      const b = await tx.broadcast(input.group, "tx-room", { n: 3 });
      const e = await tx.emit({ type: "tx.written", data: { n: 4 } });
      if (input.fail) throw new Error("changed my mind");
      return { published: typeof p.id, sent: typeof s.id, members: b.count, event: e.id.length > 0 };
    });
  },
);

const count = async (t: ReturnType<typeof testTroupe>, sql: string, params: unknown[] = []) =>
  (await databaseOf(t).query<{ n: number }>(boundSql(t, sql), params)).rows[0]!.n;

describe("publishing inside a transactional step", () => {
  const t = testTroupe({ actors: [reader, writer] });
  after(() => t.stop());

  test("tx.publish / send / broadcast / emit commit with the step and wake their readers", async () => {
    await t.start();
    const table = `"${storageOf(t).schema}".tx_notes`;
    await databaseOf(t).query(`CREATE TABLE IF NOT EXISTS ${table} (note text)`);
    const news = await t.spawn(reader, { ch: "tx-news", mode: "broadcast", group: "tx-ready-1", n: 1 });
    const inbox = await t.spawn(reader, { ch: "tx-inbox", mode: "direct", group: "tx-ready-2", n: 1 });
    const roomA = await t.spawn(reader, { ch: "tx-room", mode: "direct", group: "tx-room-g", n: 1 });
    const roomB = await t.spawn(reader, { ch: "tx-room", mode: "direct", group: "tx-room-g", n: 1 });
    await eventually(
      async () =>
        (await t.members("tx-ready-1")).length === 1 &&
        (await t.members("tx-ready-2")).length === 1 &&
        (await t.members("tx-room-g")).length === 2,
      "readers subscribed",
    );
    const w = await t.spawn(writer, { table, to: inbox.id, group: "tx-room-g" });
    assert.deepEqual(await w.result({ timeout: "30s" }), {
      published: "string",
      sent: "string",
      members: 2,
      event: true,
    });
    for (const r of [news, inbox, roomA, roomB]) {
      const got = (await r.result({ timeout: "30s" })) as { data: { n: number }; sender: string }[];
      assert.equal(got.length, 1, "each reader got its message");
      assert.equal(got[0]!.sender, w.id);
    }
    assert.equal(await count(t, `SELECT count(*)::int AS n FROM ${table}`), 1);
    assert.equal(
      await count(t, "SELECT count(*)::int AS n FROM {schema}.outbox WHERE actor_id = $1", [w.id]),
      1,
    );
    // Origin: the step's journal position, one index per message.
    const { rows } = await databaseOf(t).query<{ seq: number; idx: number[] }>(
      boundSql(
        t,
        `SELECT origin_seq AS seq, array_agg(origin_index ORDER BY origin_index) AS idx
                        FROM {schema}.messages WHERE origin_actor = $1 GROUP BY origin_seq`,
      ),
      [w.id],
    );
    assert.deepEqual(rows, [{ seq: 0, idx: [0, 1, 2, 3] }]);
  });

  test("a transaction that throws writes no message, no event and no row", async () => {
    await t.start();
    const table = `"${storageOf(t).schema}".tx_notes_fail`;
    await databaseOf(t).query(`CREATE TABLE IF NOT EXISTS ${table} (note text)`);
    const inbox = await t.spawn(reader, { ch: "tx-inbox", mode: "direct", group: "tx-ready-f", n: 1 });
    await eventually(async () => (await t.members("tx-ready-f")).length === 1, "reader subscribed");
    const before = await count(t, "SELECT count(*)::int AS n FROM {schema}.messages");
    const w = await t.spawn(writer, { table, to: inbox.id, group: "tx-room-g", fail: true });
    await assert.rejects(w.result({ timeout: "30s" }), /changed my mind/);
    assert.equal(await count(t, "SELECT count(*)::int AS n FROM {schema}.messages"), before);
    assert.equal(
      await count(t, "SELECT count(*)::int AS n FROM {schema}.outbox WHERE actor_id = $1", [w.id]),
      0,
    );
    assert.equal(await count(t, `SELECT count(*)::int AS n FROM ${table}`), 0);
    assert.equal((await t.get(inbox.id))?.status, "waiting", "the reader is still waiting: nothing arrived");
  });

  test("a retried attempt publishes once; bad input is a typed error that writes nothing and can be caught", async () => {
    await t.start();
    let attempts = 0;
    const flaky = actor("tx-flaky", async (ctx: ActorContext) => {
      return ctx.transaction(
        "flaky",
        async (tx) => {
          await tx.publish("tx-flaky-news", { attempt: ++attempts });
          if (attempts === 1) throw new Error("transient hiccup");
          const codes: string[] = [];
          const expect = async (p: Promise<unknown>) => {
            try {
              await p;
              codes.push("none");
            } catch (err) {
              codes.push(err instanceof TroupeError ? err.code : String(err));
            }
          };
          await expect(tx.publish("", 1));
          await expect(tx.publish("x".repeat(300), 1));
          await expect(tx.send("nobody-has-this-id", "tx-inbox", 1));
          await expect(tx.broadcast("", "tx-room", 1));
          await expect(
            tx.publish(
              channel<number>("tx-typed", {
                schema: {
                  parse: (v) =>
                    Number(v) > 0
                      ? Number(v)
                      : (() => {
                          throw new Error("not positive");
                        })(),
                },
              }),
              -1,
            ),
          );
          await expect(tx.publish("tx-flaky-news", "y".repeat(2 * 1024 * 1024)));
          await expect(tx.emit({ type: "" }));
          return codes;
        },
        { retry: { maxAttempts: 3, initialDelay: "10ms" } },
      );
    });
    t.register(flaky);
    const r = await t.spawn(flaky, {});
    const codes = await r.result({ timeout: "30s" });
    assert.equal(attempts, 2);
    assert.deepEqual(codes, [
      "VALIDATION",
      "VALIDATION",
      "NOT_FOUND",
      "VALIDATION",
      "INVALID_MESSAGE",
      "PAYLOAD_TOO_LARGE",
      "VALIDATION",
    ]);
    const { rows } = await databaseOf(t).query<{ data: Buffer }>(
      boundSql(
        t,
        "SELECT data FROM {schema}.messages WHERE channel = 'tx-flaky-news' OR channel = 'tx-typed'",
      ),
    );
    assert.equal(rows.length, 1, "only the committed attempt's message exists");
  });

  test("ctx calls inside the callback are typed errors (they would commit outside the transaction)", async () => {
    await t.start();
    const mixer = actor("tx-mixer", async (ctx: ActorContext) => {
      const inside = await ctx.transaction("mix", async () => {
        try {
          await ctx.publish("tx-mixed", 1);
          return "published";
        } catch (err) {
          return err instanceof TroupeError ? err.code : String(err);
        }
      });
      // Outside the callback ctx works as usual, and a ctx call racing the transaction from
      // outside it is not mistaken for one inside.
      const [tx, out] = await Promise.all([
        ctx.transaction("quiet", async (tx) => (await tx.query("SELECT 1 AS one")).rows.length),
        ctx.publish("tx-mixed", 2),
      ]);
      return { inside, tx, out: typeof out.id };
    });
    t.register(mixer);
    const r = await t.spawn(mixer, {});
    assert.deepEqual(await r.result({ timeout: "30s" }), { inside: "VALIDATION", tx: 1, out: "string" });
    assert.equal(
      await count(t, "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'tx-mixed'"),
      1,
    );
  });
});

describe("transactional publishing across a restart", () => {
  test("a replay after restart does not publish again", async () => {
    const db = await restartable();
    const once = actor("tx-once", async (ctx: ActorContext) => {
      await ctx.transaction("announce", async (tx) => {
        await tx.publish("tx-once-news", { hello: ctx.id });
        await tx.emit({ type: "tx.once" });
      });
      await ctx.subscribe("tx-once-go", "direct");
      await ctx.receive("tx-once-go");
      return "done";
    });
    try {
      const a = db.make({ actors: [once] });
      await a.start();
      const ref = await a.spawn(once, {});
      await eventually(async () => (await a.get(ref.id))?.status === "waiting", "actor waiting");
      await a.stop();
      const b = db.make({ actors: [once] });
      await b.start();
      try {
        await b.send(ref.id, "tx-once-go", 1);
        assert.equal(await b.ref(ref.id).result({ timeout: "30s" }), "done");
        assert.equal(
          await count(b, "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'tx-once-news'"),
          1,
        );
        assert.equal(
          await count(b, "SELECT count(*)::int AS n FROM {schema}.outbox WHERE actor_id = $1", [ref.id]),
          1,
        );
      } finally {
        await b.stop();
      }
    } finally {
      await db.cleanup();
    }
  });
});
