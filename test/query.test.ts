import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { actor, type ActorInfo, type Troupe, type TroupeError } from "../src/index.js";
import { dropSchema, freshSchema, PG_URL, restartable, testTroupe } from "./helpers.js";
import { databaseOf, sqlRows, sqlRun } from "./support/internals.js";

const order = actor("order", async () => "never runs here");
const invoice = actor("invoice", async () => "never runs here");

describe("querying actors", () => {
  // A client-only Troupe: actors are created but nothing runs them, so statuses stay put.
  const t = testTroupe({ actors: [order, invoice], worker: false });
  after(() => t.stop());
  const N = 10_000;

  test(`list, paginate and filter ${N} actors`, async () => {
    await t.start();
    // Bulk-create through the storage layer in one statement (spawn() one by one would measure nothing useful here).
    await sqlRun(
      t,
      `
        INSERT INTO {schema}.actors (id, actor, status, input, input_json, started_at)
        SELECT 'act-' || lpad(i::text, 5, '0'), CASE WHEN i % 4 = 0 THEN 'invoice' ELSE 'order' END,
               CASE WHEN i % 10 = 0 THEN 'failed' WHEN i % 3 = 0 THEN 'waiting' ELSE 'completed' END,
               '\\x01'::bytea || convert_to(json_build_object('customer', json_build_object('id', 'c' || (i % 7)), 'items', json_build_array(json_build_object('sku', 's' || (i % 5))))::text, 'UTF8'),
               json_build_object('customer', json_build_object('id', 'c' || (i % 7)), 'items', json_build_array(json_build_object('sku', 's' || (i % 5)))),
               timestamptz '2030-01-01' + i * interval '1 second'
          FROM generate_series(1, ${N}) i`,
    );
    // Full walk: every actor exactly once, newest first.
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await t.list({ limit: 777, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((a) => a.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.equal(seen.length, N);
    assert.equal(new Set(seen).size, N);
    assert.equal(seen[0], "act-10000");
    assert.equal(seen.at(-1), "act-00001");

    const expect = (pred: (i: number) => boolean) =>
      Array.from({ length: N }, (_, k) => k + 1).filter(pred).length;
    const countAll = async (filter: Parameters<typeof t.list>[0]) => {
      let n = 0;
      let c: string | undefined;
      const items: ActorInfo[] = [];
      do {
        const page = await t.list({ ...filter, limit: 1000, ...(c ? { cursor: c } : {}) });
        n += page.items.length;
        items.push(...page.items);
        c = page.nextCursor;
      } while (c);
      return { n, items };
    };
    assert.equal(
      (await countAll({ status: "failed" })).n,
      expect((i) => i % 10 === 0),
    );
    assert.equal(
      (await countAll({ status: ["failed", "waiting"] })).n,
      expect((i) => i % 10 === 0 || i % 3 === 0),
    );
    assert.equal(
      (await countAll({ actor: "invoice" })).n,
      expect((i) => i % 4 === 0),
    );
    assert.equal((await countAll({ idContains: "act-099" })).n, 100);
    assert.equal(
      (
        await countAll({
          startedAfter: new Date("2030-01-01T00:00:10Z"),
          startedBefore: new Date("2030-01-01T00:00:21Z"),
        })
      ).n,
      10,
    );
    const c3 = await countAll({ input: { "customer.id": "c3" }, actor: "order" });
    assert.equal(
      c3.n,
      expect((i) => i % 7 === 3 && i % 4 !== 0),
    );
    assert.ok(c3.items.every((a) => (a.input as { customer: { id: string } }).customer.id === "c3"));
    assert.equal(
      (await countAll({ input: { "items.0.sku": "s2", "customer.id": "c1" } })).n,
      expect((i) => i % 5 === 2 && i % 7 === 1),
    );
    assert.equal((await countAll({ input: { "customer.id": "nobody" } })).n, 0);

    const stats = await t.stats();
    assert.equal(
      stats.byStatus.failed,
      expect((i) => i % 10 === 0),
    );
    assert.equal(stats.byStatus.running, 0);
  });

  test("injection attempts in JSON paths and filters are rejected with a typed error", async () => {
    await t.start();
    const bad: Parameters<typeof t.list>[0][] = [
      { input: { "a'); DROP TABLE actors; --": 1 } },
      { input: { "a..b": 1 } },
      { input: { "": 1 } },
      { input: { "a.b c": 1 } },
      { input: { "a.$b": 1 } },
      { input: { "customer.id": undefined } },
      { status: "exploded" as never },
      { limit: 0 },
      { limit: 1e9 },
      { cursor: "not-a-cursor" },
      { startedAfter: new Date("nope") },
    ];
    for (const f of bad) {
      await assert.rejects(t.list(f), (e: TroupeError) => e.code === "VALIDATION", JSON.stringify(f));
    }
    // The literal text of idContains is matched as text: LIKE wildcards mean nothing.
    assert.equal((await t.list({ idContains: "%" })).items.length, 0);
    assert.equal((await t.stats()).byStatus.completed > 0, true, "table still there");
  });
});

describe("list cursors and history pages are validated before any SQL", () => {
  const counter = actor("counter", async (ctx, input: { steps: number }) => {
    for (let i = 0; i < input.steps; i++) await ctx.step(`step-${i}`, () => i);
    return input.steps;
  });
  // Client-only (nothing polls in the background), so every statement counted is the call's own.
  let db: Awaited<ReturnType<typeof restartable>>;
  let t: Troupe;
  before(async () => {
    db = await restartable();
    // A worker runs one actor to completion, so that there is a journal to page through.
    const runner = db.make({ actors: [counter] });
    await runner.start();
    const ref = await runner.spawn(counter, { steps: 3 }, { id: "history-pages" });
    assert.equal(await ref.result({ timeout: "20s" }), 3);
    await runner.stop();
    t = db.make({ actors: [order, counter], worker: false });
    await t.start();
  });
  after(async () => {
    await t?.stop();
    await db?.cleanup();
  });
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v), "utf8").toString("base64url");

  /** Counts the statements (and transactions) the troupe sends while `fn` runs. */
  async function queriesDuring(fn: () => Promise<unknown>): Promise<number> {
    const target = databaseOf(t) as unknown as Record<"query" | "transaction", (...a: unknown[]) => unknown>;
    let n = 0;
    for (const method of ["query", "transaction"] as const) {
      const original = target[method].bind(target);
      target[method] = (...args: unknown[]) => {
        n++;
        return original(...args);
      };
    }
    try {
      await fn();
    } finally {
      // The methods live on the prototype: removing the own property restores them.
      delete (target as Partial<typeof target>).query;
      delete (target as Partial<typeof target>).transaction;
    }
    return n;
  }

  test("forged cursors are VALIDATION errors, never a database error", async () => {
    await sqlRun(
      t,
      `
        INSERT INTO {schema}.actors (id, actor, status, input, input_json, started_at)
        SELECT 'cur-' || i, 'order', 'waiting', '\\x01'::bytea || convert_to('{}', 'UTF8'), '{}'::jsonb,
               timestamptz '2030-01-01' + i * interval '1 second'
          FROM generate_series(1, 5) i`,
    );
    const first = await t.list({ actor: "order", limit: 2 });
    assert.deepEqual(
      first.items.map((a) => a.id),
      ["cur-5", "cur-4"],
    );
    const real = first.nextCursor!;
    assert.ok(real);
    // Positive controls: a real cursor, and a well-formed one made by hand, reach the database.
    assert.deepEqual(
      (await t.list({ actor: "order", cursor: real })).items.map((a) => a.id),
      ["cur-3", "cur-2", "cur-1"],
    );
    assert.deepEqual(
      (await t.list({ actor: "order", cursor: enc(["2030-01-01 00:00:03+00", "cur-3"]) })).items.map(
        (a) => a.id,
      ),
      ["cur-2", "cur-1"],
    );
    assert.deepEqual(
      (await t.list({ actor: "order", cursor: enc(["2030-01-01 05:30:04.5+05:30", "zzz"]) })).items.map(
        (a) => a.id,
      ),
      ["cur-4", "cur-3", "cur-2", "cur-1"],
    );

    const forged: [string, unknown][] = [
      ["random base64url", randomBytes(48).toString("base64url")],
      ["random standard base64 with padding", randomBytes(31).toString("base64")],
      ["not base64 at all", "not a cursor!"],
      ["empty", ""],
      ["a real cursor with a character appended", real + "A"],
      ["a real cursor with padding", real + "="],
      ["a real cursor, truncated", real.slice(0, -3)],
      ["JSON object", enc({ startedKey: "2030-01-01 00:00:03+00", id: "cur-3" })],
      ["JSON string", enc("2030-01-01 00:00:03+00")],
      ["JSON number", enc(42)],
      ["JSON null", enc(null)],
      ["empty array", enc([])],
      ["one element", enc(["2030-01-01 00:00:03+00"])],
      ["three elements", enc(["2030-01-01 00:00:03+00", "cur-3", "x"])],
      ["number key", enc([1893456000000, "cur-3"])],
      ["number id", enc(["2030-01-01 00:00:03+00", 3])],
      ["nulls", enc([null, null])],
      ["nested arrays", enc([["2030-01-01 00:00:03+00"], ["cur-3"]])],
      ["garbage key", enc(["garbage", "cur-3"])],
      ["SQL in the key", enc(["2030-01-01'); DROP TABLE actors; --", "cur-3"])],
      ["30 February", enc(["2030-02-30 00:00:00+00", "cur-3"])],
      ["29 February of a common year", enc(["2031-02-29 00:00:00+00", "cur-3"])],
      ["month 13", enc(["2030-13-01 00:00:00+00", "cur-3"])],
      ["hour 24", enc(["2030-01-01 24:00:00+00", "cur-3"])],
      ["offset +16", enc(["2030-01-01 00:00:00+16", "cur-3"])],
      ["no offset", enc(["2030-01-01 00:00:00", "cur-3"])],
      ["ISO with T and Z", enc(["2030-01-01T00:00:00Z", "cur-3"])],
      ["year 0", enc(["0000-01-01 00:00:00+00", "cur-3"])],
      ["past the end of timestamptz", enc(["300000-01-01 00:00:00+00", "cur-3"])],
      ["infinity", enc(["infinity", "cur-3"])],
      ["NUL in the id", enc(["2030-01-01 00:00:03+00", "cur\u00003"])],
      ["empty id", enc(["2030-01-01 00:00:03+00", ""])],
      ["id with whitespace", enc(["2030-01-01 00:00:03+00", "cur 3"])],
      ["id longer than any actor id", enc(["2030-01-01 00:00:03+00", "x".repeat(256)])],
      ["JSON with extra spaces", Buffer.from('[ "2030-01-01 00:00:03+00" , "cur-3" ]').toString("base64url")],
      ["a very long string", "A".repeat(1_000_000)],
      ["a very long well-formed cursor", enc(["2030-01-01 00:00:03+00", "x".repeat(100_000)])],
      ["a number instead of a string", 12345],
      ["an object instead of a string", { startedKey: "2030-01-01 00:00:03+00" }],
    ];
    for (const [what, cursor] of forged) {
      const n = await queriesDuring(() =>
        assert.rejects(
          t.list({ actor: "order", cursor: cursor as string }),
          (e: TroupeError) => e.code === "VALIDATION" && /cursor/.test(e.message),
          what,
        ),
      );
      assert.equal(n, 0, `${what}: no SQL was sent`);
    }
  });

  test("real cursors survive session time zones with odd offsets and historical dates", async () => {
    // Asia/Kathmandu is +05:45 today and +05:41:16 (local mean time) before 1920.
    const zone = "Asia/Kathmandu";
    const pool = PG_URL
      ? new pg.Pool({ connectionString: PG_URL, options: `-c TimeZone=${zone}` })
      : undefined;
    const schema = freshSchema();
    const z = testTroupe({ actors: [order], worker: false, schema, ...(pool ? { database: pool } : {}) });
    try {
      await z.start();
      if (!pool) await databaseOf(z).query(`SET TimeZone TO '${zone}'`);
      await sqlRun(
        z,
        `
          INSERT INTO {schema}.actors (id, actor, status, input, input_json, started_at)
          SELECT 'tz-' || lpad(i::text, 2, '0'), 'order', 'waiting', '\\x01'::bytea || convert_to('{}', 'UTF8'), '{}'::jsonb,
                 CASE WHEN i % 2 = 0 THEN timestamptz '1890-01-01 00:00:00.123456+00' ELSE timestamptz '2030-06-01 00:00:00.5+00' END
                   + i * interval '1 minute'
            FROM generate_series(1, 12) i`,
      );
      const rows = await sqlRows<{ k: string }>(z, `SELECT min(started_at)::text AS k FROM {schema}.actors`);
      assert.match(rows[0]!.k, /\+05:41:16$/, "the session really is in that zone");
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await z.list({ limit: 1, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((a) => a.id));
        cursor = page.nextCursor;
      } while (cursor);
      assert.deepEqual(
        seen,
        [11, 9, 7, 5, 3, 1, 12, 10, 8, 6, 4, 2].map((i) => `tz-${String(i).padStart(2, "0")}`),
      );
    } finally {
      await z.stop();
      if (pool) {
        await pool.end();
        await dropSchema(schema);
      }
    }
  });

  test("history pageSize must be an integer from 1 to 10000", async () => {
    const read = async (pageSize?: number) => {
      const names: string[] = [];
      for await (const e of t.history("history-pages", pageSize === undefined ? {} : { pageSize }))
        names.push(e.name);
      return names;
    };
    const all = await read();
    assert.ok(all.length >= 3, `three steps journaled: ${all.join(", ")}`);
    for (const size of [1, 2, 10_000]) assert.deepEqual(await read(size), all, `pageSize ${size}`);

    for (const bad of [
      0,
      -1,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      10_001,
      1e9,
      "10" as never,
      null as never,
    ]) {
      const n = await queriesDuring(() =>
        assert.rejects(
          read(bad),
          (e: TroupeError) => e.code === "VALIDATION" && /pageSize/.test(e.message),
          String(bad),
        ),
      );
      assert.equal(n, 0, `pageSize ${String(bad)}: no SQL was sent`);
    }
    // Checked before the id is looked up: a bad pageSize for an unknown id is still VALIDATION.
    await assert.rejects(
      (async () => {
        for await (const _ of t.history("no-such-actor", { pageSize: 0 })) void _;
      })(),
      (e: TroupeError) => e.code === "VALIDATION",
    );
    await assert.rejects(
      (async () => {
        for await (const _ of t.history("history-pages", null as never)) void _;
      })(),
      (e: TroupeError) => e.code === "VALIDATION",
    );
  });
});
