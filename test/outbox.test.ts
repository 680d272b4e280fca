import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, test } from "node:test";
import { encode, decode } from "../src/codec.js";
import { LockLostError, PayloadTooLargeError, TroupeError, ValidationError } from "../src/api/errors.js";
import { httpSink } from "../src/outbox/http-sink.js";
import type { OutboxStatus } from "../src/outbox/outbox-entry.js";
import { OutboxStore } from "../src/storage/outbox-store.js";
import { OutboxRelay, type OutboxRelayOptions } from "../src/outbox/relay.js";
import { SchemaDb } from "../src/storage/schema-db.js";
import { PgDatabase } from "../src/storage/pg-database.js";
import type { Troupe } from "../src/troupe.js";
import { PG_URL, dropSchema, eventually, needsPostgres, testTroupe } from "./helpers.js";
import { SinkServer, duplicates } from "./fixtures/outbox-sink.js";
import { boundSql, databaseOf, schemaOf } from "./support/internals.js";

interface Env {
  t: Troupe;
  store: OutboxStore;
  schema: string;
  sink: SinkServer;
  relay: (o?: Partial<OutboxRelayOptions> & { mode?: "binary" | "structured" }) => OutboxRelay;
  sql: <R = Record<string, unknown>>(text: string, params?: unknown[]) => Promise<R[]>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

/** A client-only Troupe (no worker), an OutboxStore on its database, and a real HTTP sink. */
async function setup(storeOpts: { maxEventBytes?: number } = {}): Promise<Env> {
  const t = testTroupe({ worker: false });
  await t.start();
  const db = databaseOf(t);
  const schema = schemaOf(t);
  const store = new OutboxStore(new SchemaDb(db, schema), storeOpts);
  const sink = new SinkServer();
  await sink.listen(0);
  const relays: OutboxRelay[] = [];
  cleanups.push(async () => {
    for (const r of relays) await r.stop();
    await sink.close();
    await t.stop();
    await dropSchema(schema);
  });
  return {
    t,
    store,
    schema,
    sink,
    relay: (o = {}) => {
      const { mode, ...rest } = o;
      const r = new OutboxRelay(store, {
        sink: httpSink({ url: sink.url, mode: mode ?? "binary", timeout: "10s" }),
        pollInterval: 20,
        backoff: { initial: 20, max: 200, jitter: 0 },
        ...rest,
      });
      relays.push(r);
      r.start();
      return r;
    },
    sql: async (text, params) => (await db.query(boundSql(t, text), params)).rows as never,
  };
}

const countsAre = (store: OutboxStore, want: Partial<Record<OutboxStatus, number>>) => async () => {
  const c = await store.counts();
  return Object.entries(want).every(([k, v]) => c[k as OutboxStatus] === v) ? c : null;
};

async function emitMany(store: OutboxStore, n: number, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await store.emit({ type: "test.event", data: { i, prefix } })).id);
  return ids;
}

const sorted = (xs: readonly string[]) => [...xs].sort();

describe("outbox: writing events", () => {
  test("emit validates the event and writes nothing for bad input", async () => {
    const { store } = await setup({ maxEventBytes: 2000 });
    const bad: [unknown, RegExp][] = [
      [{}, /"type" is required/],
      [{ type: "" }, /must not be empty/],
      [{ type: "x".repeat(201) }, /201 characters long; the limit is 200/],
      [{ type: "a\nb" }, /control characters/],
      [{ type: "a", Tenant: "x" }, /extension attribute name "Tenant" is invalid/],
      [{ type: "a", averyveryverylongextensionname: "x" }, /is invalid/],
      [{ type: "a", ext: { nested: true } }, /must be a string, boolean, integer or Date/],
      [{ type: "a", ext: 1.5 }, /must be an integer/],
      [{ type: "a", specversion: "0.3" }, /must be "1.0"/],
      [{ type: "a", time: "yesterday" }, /RFC 3339/],
      [{ type: "a", datacontenttype: "json" }, /media type/],
      [{ type: "a", data: new Date() }, /CloudEvent data is a Date/],
      [{ type: "a", data: { when: new Map() } }, /CloudEvent data\.when is a Map/],
      [{ type: "a", data: [1, Number.NaN] }, /CloudEvent data\[1\] is NaN/],
      [{ type: "a", data: () => 1 }, /is a function/],
      [{ type: "a", data: "nul\u0000" }, /NUL character/],
      [{ type: "a", data_base64: "AAAA" }, /not "data_base64"/],
    ];
    for (const [event, msg] of bad) {
      await assert.rejects(
        () => store.emit(event as never),
        (err: unknown) =>
          err instanceof ValidationError && err.code === "VALIDATION" && msg.test(err.message),
        `expected ${msg} for ${JSON.stringify(event, (_k, v: unknown) => (typeof v === "function" ? "fn" : v))}`,
      );
    }
    await assert.rejects(
      () => store.emit({ type: "big", data: "x".repeat(3000) }),
      (err: unknown) => err instanceof PayloadTooLargeError && err.code === "PAYLOAD_TOO_LARGE",
    );
    assert.deepEqual(await store.counts(), { pending: 0, processing: 0, sent: 0, dead: 0 });
  });

  test("emit fills in the CloudEvent defaults; a repeated id is not written twice", async () => {
    const { store } = await setup();
    const { id, duplicate } = await store.emit({ type: "order.placed", data: { n: 1 }, tenant: "acme" });
    assert.equal(duplicate, false);
    const e = await store.get(id);
    assert.ok(e);
    assert.equal(e.status, "pending");
    assert.equal(e.attempts, 0);
    assert.equal(e.actorId, null);
    const { time, ...rest } = e.event;
    assert.ok(typeof time === "string" && !Number.isNaN(Date.parse(time)));
    assert.deepEqual(rest, {
      specversion: "1.0",
      id,
      source: "troupe://troupe",
      type: "order.placed",
      datacontenttype: "application/json",
      tenant: "acme",
      data: { n: 1 },
    });
    const again = await store.emit({ id, type: "order.placed", data: { n: 2 } });
    assert.deepEqual(again, { id, duplicate: true });
    assert.equal((await store.counts()).pending, 1);
    assert.deepEqual((await store.get(id))?.event.data, { n: 1 });
  });

  test("emitFromActor: fence, local entries, outbox row and journal entry in one statement", async () => {
    const { store, sql } = await setup();
    // An actor row whose lease worker "w1" holds (as a claim would leave it).
    const [row] = await sql<{ lease_version: string }>(
      `INSERT INTO {schema}.actors (id, actor, status, input, lease_owner, lease_expires_at, lease_version)
       VALUES ('em-1', 'emitter', 'running', $1, 'w1', now() + interval '1 minute', 7) RETURNING lease_version`,
      [encode({})],
    );
    const fence = { actorId: "em-1", leaseVersion: Number(row!.lease_version), worker: "w1" };
    const journalVersion = async () =>
      Number(
        (await sql<{ v: number }>("SELECT journal_version AS v FROM {schema}.actors WHERE id = 'em-1'"))[0]!
          .v,
      );
    const local = { seq: 0, kind: "now", name: "now", result: encode(42), error: null };

    const { id } = await store.emitFromActor(
      fence,
      [local],
      { seq: 1, leaseMs: 10_000, generation: 0 },
      {
        type: "order.placed",
        data: { total: 10 },
      },
    );

    const journal = await sql<{ seq: number; kind: string; name: string; result: Uint8Array }>(
      "SELECT seq, kind, name, result FROM {schema}.journal WHERE actor_id = 'em-1' ORDER BY seq",
    );
    assert.deepEqual(
      journal.map((j) => [j.seq, j.kind, j.name]),
      [
        [0, "now", "now"],
        [1, "emit", "order.placed"],
      ],
    );
    assert.equal(Buffer.from(journal[1]!.result)[0], 0x01, "JSON-tagged result");
    assert.deepEqual(decode(journal[1]!.result), { id });
    assert.equal(await journalVersion(), 2);

    const rows = await sql<{
      actor_id: string;
      origin_generation: number;
      origin_seq: number;
      event_id: string;
    }>("SELECT actor_id, origin_generation, origin_seq, event_id FROM {schema}.outbox");
    assert.deepEqual(rows, [{ actor_id: "em-1", origin_generation: 0, origin_seq: 1, event_id: id }]);
    const e = await store.get(id);
    assert.equal(
      e?.event.source,
      "troupe://emitter/em-1",
      "source defaults to troupe://<actor name>/<actor id>",
    );
    assert.equal(e?.actorId, "em-1");

    // An explicit source is kept; a stale lease (or a wrong generation) writes nothing at all.
    const second = await store.emitFromActor(
      fence,
      [],
      { seq: 2, leaseMs: 10_000 },
      {
        type: "order.paid",
        source: "https://shop.example/orders",
        data: null,
      },
    );
    assert.equal((await store.get(second.id))?.event.source, "https://shop.example/orders");
    const stale = { ...fence, leaseVersion: fence.leaseVersion - 1 };
    const otherWorker = { ...fence, worker: "w2" };
    for (const [f, gen] of [
      [stale, 0],
      [otherWorker, 0],
      [fence, 1],
    ] as const) {
      await assert.rejects(
        () =>
          store.emitFromActor(
            f,
            [{ ...local, seq: 3 }],
            { seq: 4, leaseMs: 10_000, generation: gen },
            {
              type: "x",
            },
          ),
        (err: unknown) => err instanceof LockLostError && (err as TroupeError).code === "LOCK_LOST",
      );
    }
    assert.equal((await store.counts()).pending, 2);
    assert.equal((await sql("SELECT 1 FROM {schema}.journal WHERE actor_id = 'em-1'")).length, 3);
    assert.equal(await journalVersion(), 3);
  });
});

describe("outbox: relaying to an HTTP sink", () => {
  test("binary mode: ce-* headers (percent-encoded), data as the body with its content type", async () => {
    const env = await setup();
    const json = await env.store.emit({
      type: "order.placed",
      source: "https://shop.example/orders",
      subject: 'naïve "quote" 100%',
      data: { total: 10 },
      tenant: "acme",
      priority: 5,
      urgent: true,
    });
    const bytes = await env.store.emit({ type: "blob.stored", data: Buffer.from([0, 1, 2, 255]) });
    const text = await env.store.emit({ type: "note", data: "hello", datacontenttype: "text/plain" });
    const none = await env.store.emit({ type: "ping" });
    env.relay();
    await eventually(countsAre(env.store, { sent: 4 }), "4 events sent");
    const byId = new Map(env.sink.requests.map((r) => [r.eventId, r]));

    const j = byId.get(json.id)!;
    assert.equal(j.headers["ce-specversion"], "1.0");
    assert.equal(j.headers["ce-type"], "order.placed");
    assert.equal(j.headers["ce-source"], "https://shop.example/orders");
    assert.equal(j.headers["ce-subject"], "na%C3%AFve%20%22quote%22%20100%25");
    assert.equal(decodeURIComponent(String(j.headers["ce-subject"])), 'naïve "quote" 100%');
    assert.equal(j.headers["ce-tenant"], "acme");
    assert.equal(j.headers["ce-priority"], "5");
    assert.equal(j.headers["ce-urgent"], "true");
    assert.ok(j.headers["ce-time"]);
    assert.equal(j.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(j.body.toString("utf8")), { total: 10 });

    const b = byId.get(bytes.id)!;
    assert.equal(b.headers["content-type"], "application/octet-stream");
    assert.deepEqual([...b.body], [0, 1, 2, 255]);
    const tx = byId.get(text.id)!;
    assert.equal(tx.headers["content-type"], "text/plain");
    assert.equal(tx.body.toString("utf8"), "hello");
    const n = byId.get(none.id)!;
    assert.equal(n.body.length, 0);
    assert.equal(n.headers["ce-type"], "ping");
    assert.deepEqual(sorted(env.sink.delivered), sorted([json.id, bytes.id, text.id, none.id]));
  });

  test("structured mode: the event as application/cloudevents+json (bytes as data_base64)", async () => {
    const env = await setup();
    const json = await env.store.emit({ type: "order.placed", data: { total: 10 }, tenant: "acme" });
    const bytes = await env.store.emit({ type: "blob.stored", data: new Uint8Array([9, 8, 7]) });
    env.relay({ mode: "structured" });
    await eventually(countsAre(env.store, { sent: 2 }), "2 events sent");
    const byId = new Map(env.sink.requests.map((r) => [r.eventId, r]));
    const j = byId.get(json.id)!;
    assert.match(String(j.headers["content-type"]), /^application\/cloudevents\+json/);
    const doc = JSON.parse(j.body.toString("utf8")) as Record<string, unknown>;
    assert.deepEqual(
      { ...doc, time: undefined },
      {
        specversion: "1.0",
        id: json.id,
        source: "troupe://troupe",
        type: "order.placed",
        datacontenttype: "application/json",
        tenant: "acme",
        data: { total: 10 },
        time: undefined,
      },
    );
    const b = JSON.parse(byId.get(bytes.id)!.body.toString("utf8")) as Record<string, unknown>;
    assert.equal(b.data_base64, Buffer.from([9, 8, 7]).toString("base64"));
    assert.equal(b.data, undefined);
    assert.equal(b.datacontenttype, "application/octet-stream");
  });

  test("sink answering 500, then recovering: every event delivered exactly once", async () => {
    const env = await setup();
    let down = true;
    env.sink.respond = () => (down ? 500 : 200);
    const ids = await emitMany(env.store, 30, "500");
    const relay = env.relay();
    await eventually(async () => {
      const [r] = await env.sql<{ n: number }>(
        "SELECT count(*)::int AS n FROM {schema}.outbox WHERE attempts >= 2 AND status = 'pending'",
      );
      return r!.n === 30;
    }, "every event to fail at least twice");
    const failedRequests = env.sink.requests.length;
    assert.ok(failedRequests >= 60);
    const e = await env.store.get(ids[0]!);
    assert.match(e?.lastError ?? "", /answered 500: sink says 500/);
    down = false;
    await eventually(countsAre(env.store, { sent: 30, pending: 0, processing: 0, dead: 0 }), "all sent");
    assert.deepEqual(duplicates(env.sink.delivered), []);
    assert.deepEqual(sorted(env.sink.delivered), sorted(ids));
    assert.equal(env.sink.requests.length, failedRequests + 30, "no request after its event was accepted");
    assert.equal(relay.stats.sent, 30);
  });

  test("sink server down (connection refused), then back on the same port: delivered once each", async () => {
    const env = await setup();
    await env.sink.close();
    const ids = await emitMany(env.store, 20, "down");
    env.relay();
    await eventually(async () => {
      const [r] = await env.sql<{ n: number }>(
        "SELECT count(*)::int AS n FROM {schema}.outbox WHERE attempts >= 2 AND status = 'pending'",
      );
      return r!.n === 20;
    }, "every event to fail at least twice");
    assert.match((await env.store.get(ids[0]!))?.lastError ?? "", /failed: .*ECONNREFUSED/);
    assert.equal(env.sink.requests.length, 0);
    await env.sink.listen();
    await eventually(countsAre(env.store, { sent: 20 }), "all sent after the sink came back");
    assert.deepEqual(duplicates(env.sink.delivered), []);
    assert.deepEqual(sorted(env.sink.delivered), sorted(ids));
    assert.equal(env.sink.requests.length, 20);
  });

  test("after maxAttempts an event is a dead letter: inspectable, then re-driven and delivered", async () => {
    const env = await setup();
    let down = true;
    env.sink.respond = () => (down ? 503 : 202);
    const ids = await emitMany(env.store, 5, "dead");
    env.relay({ maxAttempts: 3 });
    await eventually(countsAre(env.store, { dead: 5, pending: 0, processing: 0 }), "5 dead letters");
    assert.equal(env.sink.requests.length, 15, "3 attempts each, then no more");

    const seen: string[] = [];
    let cursor: string | undefined;
    const pages: number[] = [];
    do {
      const page = await env.store.deadLetters({ limit: 2, ...(cursor ? { cursor } : {}) });
      pages.push(page.items.length);
      for (const e of page.items) {
        assert.equal(e.status, "dead");
        assert.equal(e.attempts, 3);
        assert.match(e.lastError ?? "", /answered 503.*gave up after 3 attempts/);
        assert.equal(e.event.type, "test.event");
        seen.push(e.event.id);
      }
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(pages, [2, 2, 1]);
    assert.deepEqual(sorted(seen), sorted(ids));
    await assert.rejects(() => env.store.deadLetters({ cursor: "nope" }), ValidationError);
    await assert.rejects(() => env.store.redrive([""]), ValidationError);

    down = false;
    assert.deepEqual(await env.store.redrive([ids[0]!, "no-such-event"]), { count: 1 });
    await eventually(countsAre(env.store, { sent: 1, dead: 4 }), "the re-driven event sent");
    assert.equal((await env.store.get(ids[0]!))?.attempts, 1, "attempts were reset");
    assert.deepEqual(await env.store.redrive("all"), { count: 4 });
    await eventually(countsAre(env.store, { sent: 5, dead: 0 }), "all re-driven events sent");
    assert.deepEqual(sorted(env.sink.delivered), sorted(ids));
    assert.deepEqual(await env.store.redrive("all"), { count: 0 });
  });

  test("a 4xx other than 408/425/429 is permanent: dead letter after one attempt", async () => {
    const env = await setup();
    const rejected = await env.store.emit({ type: "rejected", data: 1 });
    let busyCount = 0;
    env.sink.respond = (r) => {
      if (r.headers["ce-type"] === "rejected") return 422;
      if (r.headers["ce-type"] === "busy") return busyCount++ < 2 ? 429 : 200;
      return 200;
    };
    const busy = await env.store.emit({ type: "busy", data: 2 });
    env.relay({ maxAttempts: 5 });
    await eventually(countsAre(env.store, { dead: 1, sent: 1 }), "one dead, one sent");
    const dead = await env.store.get(rejected.id);
    assert.equal(dead?.status, "dead");
    assert.equal(dead?.attempts, 1);
    assert.match(dead?.lastError ?? "", /answered 422/);
    const sent = await env.store.get(busy.id);
    assert.equal(sent?.status, "sent");
    assert.equal(sent?.attempts, 3, "429 is retried");
  });

  test("rows stuck in processing (their relay died) are reclaimed and delivered", async () => {
    const env = await setup();
    const ids = await emitMany(env.store, 3, "stuck");
    const claimed = await env.store.claim("ghost-relay", 10);
    assert.equal(claimed.length, 3);
    assert.ok(
      claimed.every((e) => e.status === "processing" && e.lockedBy === "ghost-relay" && e.attempts === 1),
    );
    assert.deepEqual(await env.store.claim("another-relay", 10), [], "claimed rows are not claimed again");
    assert.equal(await env.store.reclaimStuck(60_000), 0, "fresh claims are not reclaimed");
    const relay = env.relay({ processingTimeout: 300 });
    await eventually(countsAre(env.store, { sent: 3 }), "the stuck events sent");
    assert.equal(relay.stats.reclaimed, 3);
    for (const id of ids) {
      const e = await env.store.get(id);
      assert.equal(e?.attempts, 2);
      assert.equal(e?.lockedBy, null);
    }
    assert.deepEqual(sorted(env.sink.delivered), sorted(ids));
    // The ghost relay waking up late cannot overwrite the outcome.
    assert.equal(await env.store.markFailed(claimed[0]!.outboxId, "ghost-relay", "late", null, 1), false);
    assert.equal(await env.store.markSent(claimed[0]!.outboxId, "ghost-relay", 1), false);
    assert.equal((await env.store.get(ids[0]!))?.status, "sent");
  });

  test("a stuck row that used its last attempt becomes a dead letter instead of looping", async () => {
    const env = await setup();
    const { id } = await env.store.emit({ type: "poison" });
    await env.store.claim("ghost-relay", 1);
    assert.equal(await env.store.reclaimStuck(0, 1), 1);
    const e = await env.store.get(id);
    assert.equal(e?.status, "dead");
    assert.match(e?.lastError ?? "", /relay ghost-relay did not finish sending \(attempt 1\)/);
  });

  test("a slow send is not mistaken for a dead relay: the relay keeps its claim alive", async () => {
    const env = await setup();
    env.sink.respond = () => new Promise((r) => setTimeout(() => r(200), 1200));
    const { id } = await env.store.emit({ type: "slow" });
    const a = env.relay({ processingTimeout: 300 });
    await eventually(() => env.sink.requests.length === 1, "the slow send to start");
    const b = env.relay({ processingTimeout: 300 });
    await eventually(countsAre(env.store, { sent: 1 }), "the slow event sent");
    assert.equal(env.sink.requests.length, 1, "sent once, not reclaimed by the other relay");
    assert.equal(a.stats.reclaimed + b.stats.reclaimed, 0);
    assert.equal((await env.store.get(id))?.attempts, 1);
  });

  test("stop() is graceful: a send in flight finishes and is recorded", async () => {
    const env = await setup();
    env.sink.respond = () => new Promise((r) => setTimeout(() => r(200), 300));
    const { id } = await env.store.emit({ type: "in-flight" });
    const relay = env.relay();
    await eventually(() => env.sink.requests.length === 1, "the send to start");
    await relay.stop();
    assert.equal((await env.store.get(id))?.status, "sent");
    assert.equal(relay.running, false);
    assert.throws(() => relay.start(), /stopped/);
  });

  test("stop() past its timeout aborts sends in flight and hands their rows back untried", async () => {
    const env = await setup();
    env.sink.respond = () => "hang";
    const { id } = await env.store.emit({ type: "hung" });
    const relay = env.relay({ stopTimeout: 100 });
    await eventually(() => env.sink.requests.length === 1, "the send to start");
    await relay.stop();
    const e = await env.store.get(id);
    assert.equal(e?.status, "pending");
    assert.equal(e?.attempts, 0);
  });

  test("options are validated", async () => {
    const { store } = await setup();
    const sink = httpSink({ url: "http://127.0.0.1:1/x" });
    assert.throws(() => new OutboxRelay(store, {} as never), /needs a sink/);
    assert.throws(
      () => new OutboxRelay(store, { sink, maxAttempts: 0 }),
      /maxAttempts must be a positive integer/,
    );
    assert.throws(() => new OutboxRelay(store, { sink, backoff: { jitter: 2 } }), /jitter/);
    assert.throws(() => new OutboxRelay(store, { sink, pollInterval: "soon" }), /not a duration/);
    assert.throws(() => httpSink({ url: "ftp://x" }), /http:\/\/ or https:\/\//);
    assert.throws(() => httpSink({ url: "not a url" }), /is not a valid URL/);
    assert.throws(() => httpSink({ url: "http://x", mode: "batch" as never }), /mode must be/);
  });
});

describe("outbox: several relays (real Postgres)", () => {
  test(
    "two relays on separate pools over the same 500 events never send one twice",
    { skip: needsPostgres },
    async () => {
      const env = await setup();
      env.sink.respond = () => new Promise((r) => setTimeout(() => r(200), Math.random() * 3));
      const pools = [new PgDatabase(PG_URL!, { poolSize: 4 }), new PgDatabase(PG_URL!, { poolSize: 4 })];
      const relays = pools.map(
        (db, i) =>
          new OutboxRelay(new OutboxStore(new SchemaDb(db, env.schema)), {
            id: `relay-${i}`,
            sink: httpSink({ url: env.sink.url }),
            pollInterval: 10,
            batchSize: 20,
            concurrency: 5,
          }),
      );
      cleanups.push(async () => {
        for (const r of relays) await r.stop();
        for (const p of pools) await p.close();
      });
      const first = await Promise.all(
        Array.from({ length: 250 }, (_, i) => env.store.emit({ type: "race", data: { i } })),
      );
      for (const r of relays) r.start();
      const second = await Promise.all(
        Array.from({ length: 250 }, (_, i) => env.store.emit({ type: "race", data: { i: 250 + i } })),
      );
      const ids = [...first, ...second].map((e) => e.id);
      await eventually(countsAre(env.store, { sent: 500 }), "500 sent", 60_000);
      assert.deepEqual(duplicates(env.sink.requests.map((r) => r.eventId)), [], "no event sent twice");
      assert.equal(env.sink.requests.length, 500);
      assert.deepEqual(sorted(env.sink.delivered), sorted(ids));
      assert.equal(relays[0]!.stats.sent + relays[1]!.stats.sent, 500);
      assert.ok(relays[0]!.stats.sent > 0 && relays[1]!.stats.sent > 0, "both relays took part");
      const lockedBy = await env.sql<{ n: number }>(
        "SELECT count(*)::int AS n FROM {schema}.outbox WHERE attempts <> 1 OR locked_by IS NOT NULL",
      );
      assert.equal(lockedBy[0]!.n, 0, "every event claimed exactly once");
    },
  );

  test(
    "a relay killed with SIGKILL mid-send: its event is reclaimed and delivered by another",
    { skip: needsPostgres },
    async () => {
      const env = await setup();
      const { id } = await env.store.emit({ type: "crash.test", data: { n: 1 } });
      env.sink.respond = () => "hang";
      const child: ChildProcess = spawn(
        process.execPath,
        ["--import", "tsx", "test/fixtures/outbox-relay-child.ts"],
        {
          env: {
            ...process.env,
            DB: PG_URL,
            SCHEMA: env.schema,
            SINK_URL: env.sink.url,
            RELAY_ID: "doomed-relay",
          },
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      cleanups.push(async () => void child.kill("SIGKILL"));
      await eventually(() => env.sink.requests.length === 1, "the child relay to be mid-send", 30_000);
      const mid = await env.store.get(id);
      assert.equal(mid?.status, "processing");
      assert.equal(mid?.lockedBy, "doomed-relay");
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;

      env.sink.respond = () => 200;
      const relay = env.relay({ processingTimeout: 500 });
      await eventually(countsAre(env.store, { sent: 1 }), "the event delivered by the surviving relay");
      const e = await env.store.get(id);
      assert.equal(e?.attempts, 2);
      assert.equal(relay.stats.reclaimed, 1);
      assert.deepEqual(env.sink.delivered, [id], "accepted once");
      assert.equal(env.sink.requests.length, 2, "the hung attempt and the successful one");
    },
  );
});
