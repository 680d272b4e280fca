import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { actor, type ActorInfo, type TroupeError } from "../src/index.js";
import { testTroupe } from "./helpers.js";

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
    await t._storage.db.query(
      t._storage.sql(`
        INSERT INTO {schema}.actors (id, actor, status, input, input_json, started_at)
        SELECT 'act-' || lpad(i::text, 5, '0'), CASE WHEN i % 4 = 0 THEN 'invoice' ELSE 'order' END,
               CASE WHEN i % 10 = 0 THEN 'failed' WHEN i % 3 = 0 THEN 'waiting' ELSE 'completed' END,
               '\\x01'::bytea || convert_to(json_build_object('customer', json_build_object('id', 'c' || (i % 7)), 'items', json_build_array(json_build_object('sku', 's' || (i % 5))))::text, 'UTF8'),
               json_build_object('customer', json_build_object('id', 'c' || (i % 7)), 'items', json_build_array(json_build_object('sku', 's' || (i % 5)))),
               timestamptz '2030-01-01' + i * interval '1 second'
          FROM generate_series(1, ${N}) i`),
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
