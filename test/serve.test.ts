import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { decode } from "../src/codec.js";
import { actor, type ActorContext, type Troupe } from "../src/index.js";
import { httpSink } from "../src/outbox/http-sink.js";
import { OutboxStore } from "../src/storage/outbox-store.js";
import { OutboxRelay } from "../src/outbox/relay.js";
import { runServe } from "../src/cli/serve.js";
import { createServer, type TroupeServer } from "../src/serve/server.js";
import { SchemaDb } from "../src/storage/schema-db.js";
import { dropSchema, eventually, testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

/** Reads one direct message on the channel named by the event type and returns what it got. */
const reader = actor("ce-reader", async (ctx: ActorContext, input: { type: string }) => {
  await ctx.subscribe(input.type, "direct");
  await ctx.join("ce-readers");
  const m = await ctx.receive(input.type, { timeout: "30s" });
  return m ? { data: m.data, metadata: m.metadata, channel: m.channel } : null;
});

interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

async function call(base: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const binaryHeaders = (over: Record<string, string | undefined> = {}) => {
  const h: Record<string, string> = {};
  const all = {
    "ce-specversion": "1.0",
    "ce-id": `evt-${Math.random().toString(36).slice(2)}`,
    "ce-source": "https://shop.example/orders",
    "ce-type": "com.example.order.created",
    "content-type": "application/json",
    ...over,
  };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) h[k] = v;
  return h;
};

type MessageRow = {
  id: string;
  channel: string;
  data: Uint8Array;
  metadata: Record<string, any>;
  direct_to: string | null;
  idempotency_key: string | null;
};

describe("troupe serve: HTTP front door", () => {
  let troupe: Troupe;
  let server: TroupeServer;
  let base: string;
  const messages = async (): Promise<MessageRow[]> =>
    (
      await databaseOf(troupe).query<MessageRow>(
        boundSql(
          troupe,
          "SELECT id::text, channel, data, metadata, direct_to, idempotency_key FROM {schema}.messages ORDER BY id",
        ),
      )
    ).rows;
  const messageById = async (id: string) => (await messages()).find((m) => m.id === id);

  before(async () => {
    troupe = testTroupe({ actors: [reader], maxPayloadBytes: 4096 });
    await troupe.start();
    server = createServer({ troupe, port: 0, host: "127.0.0.1", maxBodyBytes: 8192 });
    base = (await server.start()).url;
  });
  after(async () => {
    const schema = storageOf(troupe).schema;
    await server.stop();
    await troupe.stop();
    await dropSchema(schema);
  });

  test("health endpoints: /healthz (alive) and /readyz (database answers)", async () => {
    assert.deepEqual(await call(base, "/healthz").then((r) => [r.status, r.body]), [200, { status: "ok" }]);
    assert.deepEqual(await call(base, "/readyz").then((r) => [r.status, r.body]), [
      200,
      { status: "ok", database: "ok" },
    ]);
    const wrong = await call(base, "/healthz", { method: "POST" });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, HEAD");
    const nowhere = await call(base, "/nope");
    assert.equal(nowhere.status, 404);
    assert.equal(nowhere.body.error.code, "NOT_FOUND");
    const get = await call(base, "/events");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
  });

  test("binary mode: 202, published to the channel named by the type, attributes as metadata", async () => {
    const headers = binaryHeaders({
      "ce-subject": "na%C3%AFve%20order",
      "ce-tenant": "acme",
      "ce-time": "2024-05-01T12:00:00Z",
    });
    const r = await call(base, "/events", {
      method: "POST",
      headers,
      body: JSON.stringify({ order: 7, items: ["a", "b"] }),
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.deepEqual(r.body, { id: r.body.id, channel: "com.example.order.created" });
    const m = await messageById(r.body.id);
    assert.ok(m, "the message is in the messages table");
    assert.equal(m.channel, "com.example.order.created");
    assert.equal(m.direct_to, null);
    assert.deepEqual(decode(m.data), { order: 7, items: ["a", "b"] });
    assert.deepEqual(m.metadata, {
      cloudevent: {
        specversion: "1.0",
        id: headers["ce-id"],
        source: "https://shop.example/orders",
        type: "com.example.order.created",
        subject: "naïve order",
        tenant: "acme",
        time: "2024-05-01T12:00:00Z",
        datacontenttype: "application/json",
      },
    });
    assert.match(m.idempotency_key ?? "", /^ce:[0-9a-f]{64}$/);
  });

  test("binary mode: text/* data as a string, other media types as bytes, no body as no data", async () => {
    const text = await call(base, "/events", {
      method: "POST",
      headers: binaryHeaders({ "ce-type": "note.added", "content-type": "text/plain; charset=utf-8" }),
      body: "hello there",
    });
    assert.equal(text.status, 202);
    assert.equal(decode((await messageById(text.body.id))!.data), "hello there");
    const bin = await call(base, "/events", {
      method: "POST",
      headers: binaryHeaders({ "ce-type": "blob.stored", "content-type": "application/octet-stream" }),
      body: new Uint8Array([0, 1, 2, 250]),
    });
    assert.equal(bin.status, 202);
    assert.deepEqual([...decode<Uint8Array>((await messageById(bin.body.id))!.data)], [0, 1, 2, 250]);
    const empty = await call(base, "/events", {
      method: "POST",
      headers: binaryHeaders({ "ce-type": "ping", "content-type": undefined }),
    });
    assert.equal(empty.status, 202);
    assert.equal(decode((await messageById(empty.body.id))!.data), undefined);
  });

  test("structured mode: 202, data or data_base64", async () => {
    const event = {
      specversion: "1.0",
      id: "s-1",
      source: "urn:test",
      type: "com.example.structured",
      datacontenttype: "application/json",
      region: "eu",
      data: { ok: true },
    };
    const r = await call(base, "/events", {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json; charset=utf-8" },
      body: JSON.stringify(event),
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const m = await messageById(r.body.id);
    assert.equal(m?.channel, "com.example.structured");
    assert.deepEqual(decode(m.data), { ok: true });
    const { data: _data, ...attrs } = event;
    assert.deepEqual(m.metadata, { cloudevent: attrs });

    const b = await call(base, "/events", {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ ...attrs, id: "s-2", data_base64: Buffer.from("bytes!").toString("base64") }),
    });
    assert.equal(b.status, 202);
    assert.equal(Buffer.from(decode<Uint8Array>((await messageById(b.body.id))!.data)).toString(), "bytes!");
  });

  test("the same source + id again is accepted but not delivered twice", async () => {
    const headers = binaryHeaders({ "ce-id": "dup-1", "ce-type": "dup.test" });
    const first = await call(base, "/events", { method: "POST", headers, body: "1" });
    const again = await call(base, "/events", { method: "POST", headers, body: "1" });
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.equal(again.body.id, first.body.id);
    const other = await call(base, "/events", {
      method: "POST",
      headers: { ...headers, "ce-source": "urn:another-source" },
      body: "1",
    });
    assert.notEqual(other.body.id, first.body.id, "ids are unique per source");
    assert.equal((await messages()).filter((m) => m.channel === "dup.test").length, 2);
  });

  test("troupeactor routes the event to one actor's mailbox; an unknown actor is 404", async () => {
    const type = "com.example.direct";
    const ref = await troupe.spawn(reader, { type }, { id: "reader-1" });
    await eventually(
      async () => (await troupe.members("ce-readers")).includes("reader-1"),
      "reader subscribed",
    );
    const r = await call(base, "/events", {
      method: "POST",
      headers: binaryHeaders({ "ce-type": type, "ce-troupeactor": "reader-1", "ce-id": "d-1" }),
      body: JSON.stringify({ hello: "reader" }),
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.deepEqual(r.body, { id: r.body.id, channel: type, actor: "reader-1" });
    const got = (await ref.result({ timeout: "20s" })) as { data: unknown; metadata: any; channel: string };
    assert.deepEqual(got.data, { hello: "reader" });
    assert.equal(got.channel, type);
    assert.equal(got.metadata.cloudevent.id, "d-1");
    assert.equal(got.metadata.cloudevent.troupeactor, "reader-1");

    const structured = await call(base, "/events", {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({
        specversion: "1.0",
        id: "d-2",
        source: "urn:x",
        type,
        troupeactor: "ghost",
        data: 1,
      }),
    });
    assert.equal(structured.status, 404);
    assert.equal(structured.body.error.code, "NOT_FOUND");
    assert.match(structured.body.error.message, /no actor with id "ghost"/);

    // The type is a direct channel now: publishing to it without a target is refused with the reason.
    const undirected = await call(base, "/events", {
      method: "POST",
      headers: binaryHeaders({ "ce-type": type }),
      body: "1",
    });
    assert.equal(undirected.status, 400);
    assert.match(undirected.body.error.message, /direct channel/);
  });

  test("400 with a clear reason for events that are not valid; nothing is published", async () => {
    const before = (await messages()).length;
    const structuredHeaders = { "content-type": "application/cloudevents+json" };
    const valid = { specversion: "1.0", id: "x-1", source: "urn:x", type: "t.x", data: 1 };
    const cases: [string, RequestInit, string, RegExp][] = [
      [
        "binary without type",
        { headers: binaryHeaders({ "ce-type": undefined }), body: "1" },
        "MISSING_ATTRIBUTE",
        /"type" is missing/,
      ],
      [
        "binary without id",
        { headers: binaryHeaders({ "ce-id": undefined }), body: "1" },
        "MISSING_ATTRIBUTE",
        /"id" is missing/,
      ],
      [
        "structured without specversion",
        { headers: structuredHeaders, body: JSON.stringify({ ...valid, specversion: undefined }) },
        "MISSING_SPECVERSION",
        /"specversion" is missing/,
      ],
      [
        "structured without source",
        { headers: structuredHeaders, body: JSON.stringify({ ...valid, source: undefined }) },
        "MISSING_ATTRIBUTE",
        /"source" is missing/,
      ],
      [
        "specversion 0.3",
        { headers: binaryHeaders({ "ce-specversion": "0.3" }), body: "1" },
        "UNSUPPORTED_SPECVERSION",
        /only "1.0"/,
      ],
      [
        "structured body that is not JSON",
        { headers: structuredHeaders, body: "{ not json" },
        "INVALID_JSON",
        /structured-mode body is not valid JSON/,
      ],
      [
        "binary application/json body that is not JSON",
        { headers: binaryHeaders(), body: "{ nope" },
        "INVALID_JSON",
        /the body is not valid JSON/,
      ],
      [
        "structured body that is an array",
        { headers: structuredHeaders, body: "[1]" },
        "INVALID_CLOUDEVENT",
        /must be a JSON object/,
      ],
      [
        "type with whitespace",
        { headers: binaryHeaders({ "ce-type": "order%20created" }), body: "1" },
        "INVALID_TYPE",
        /whitespace/,
      ],
      [
        "type too long for a channel name",
        { headers: structuredHeaders, body: JSON.stringify({ ...valid, type: "t".repeat(201) }) },
        "INVALID_ATTRIBUTE",
        /limit is 200/,
      ],
      [
        "extension name with capitals",
        { headers: structuredHeaders, body: JSON.stringify({ ...valid, Tenant: "x" }) },
        "INVALID_ATTRIBUTE",
        /attribute name "Tenant" is invalid/,
      ],
      [
        "extension with an object value",
        { headers: structuredHeaders, body: JSON.stringify({ ...valid, ext: { a: 1 } }) },
        "INVALID_ATTRIBUTE",
        /must be a string, boolean, integer or Date/,
      ],
      [
        "time that is not RFC 3339",
        { headers: binaryHeaders({ "ce-time": "yesterday" }), body: "1" },
        "INVALID_ATTRIBUTE",
        /RFC 3339/,
      ],
      [
        "malformed percent-encoding",
        { headers: binaryHeaders({ "ce-subject": "%E0%A4%A" }), body: "1" },
        "INVALID_ATTRIBUTE",
        /malformed percent-encoding/,
      ],
      [
        "both data and data_base64",
        { headers: structuredHeaders, body: JSON.stringify({ ...valid, data_base64: "AA==" }) },
        "INVALID_CLOUDEVENT",
        /not both/,
      ],
      [
        "plain JSON without CloudEvent headers",
        { headers: { "content-type": "application/json" }, body: "{}" },
        "NOT_A_CLOUDEVENT",
        /binary mode .* or structured mode/,
      ],
      [
        "a troupeactor that is not an actor id",
        { headers: binaryHeaders({ "ce-troupeactor": "a%20b" }), body: "1" },
        "INVALID_ATTRIBUTE",
        /troupeactor/,
      ],
    ];
    for (const [what, init, code, reason] of cases) {
      const r = await call(base, "/events", { method: "POST", ...init });
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, what);
      assert.match(r.body.error.message, reason, what);
    }
    const batch = await call(base, "/events", {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: "[]",
    });
    assert.equal(batch.status, 415);
    assert.equal(batch.body.error.code, "BATCH_NOT_SUPPORTED");
    assert.equal((await messages()).length, before, "nothing was published");
  });

  test("413 for a body over the server's limit or data over troupe's payload limit", async () => {
    const before = (await messages()).length;
    const tooBig = await call(base, "/events", {
      method: "POST",
      headers: binaryHeaders(),
      body: JSON.stringify({ blob: "x".repeat(10_000) }),
    });
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error.code, "PAYLOAD_TOO_LARGE");
    assert.match(tooBig.body.error.message, /larger than 8192 bytes/);

    // Without a content-length (chunked), the limit applies while reading.
    const chunked = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = http.request(`${base}/events`, { method: "POST", headers: binaryHeaders() }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on("error", reject);
      req.write(`{"blob":"${"y".repeat(6000)}`);
      req.end(`${"y".repeat(6000)}"}`);
    });
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body.error.code, "PAYLOAD_TOO_LARGE");

    const overPayload = await call(base, "/events", {
      method: "POST",
      headers: binaryHeaders(),
      body: JSON.stringify({ blob: "z".repeat(5000) }),
    });
    assert.equal(overPayload.status, 413);
    assert.equal(overPayload.body.error.code, "PAYLOAD_TOO_LARGE");
    assert.match(overPayload.body.error.message, /limit is 4096 bytes/);
    assert.equal((await messages()).length, before);
    // The server still works after refusing oversized requests.
    assert.equal(
      (await call(base, "/events", { method: "POST", headers: binaryHeaders(), body: "1" })).status,
      202,
    );
  });
});

describe("troupe serve: token, relay and readiness", () => {
  test("with a token, POST /events needs it; health endpoints stay open", async () => {
    const troupe = testTroupe({ worker: false });
    await troupe.start();
    const server = createServer({ troupe, port: 0, token: "s3cret" });
    const { url } = await server.start();
    try {
      const denied = await call(url, "/events", { method: "POST", headers: binaryHeaders(), body: "1" });
      assert.equal(denied.status, 401);
      assert.equal(denied.body.error.code, "UNAUTHORIZED");
      const wrong = await call(url, "/events", {
        method: "POST",
        headers: { ...binaryHeaders(), authorization: "Bearer nope" },
        body: "1",
      });
      assert.equal(wrong.status, 401);
      const ok = await call(url, "/events", {
        method: "POST",
        headers: { ...binaryHeaders(), authorization: "Bearer s3cret" },
        body: "1",
      });
      assert.equal(ok.status, 202);
      assert.equal((await call(url, "/healthz")).status, 200);
    } finally {
      const schema = storageOf(troupe).schema;
      await server.stop();
      await troupe.stop();
      await dropSchema(schema);
    }
  });

  test("the server runs the outbox relay and /readyz turns 503 when the database is gone", async () => {
    const troupe = testTroupe({ worker: false });
    await troupe.start();
    const schema = storageOf(troupe).schema;
    const store = new OutboxStore(new SchemaDb(databaseOf(troupe), schema));
    const received: string[] = [];
    const sink = http.createServer((req, res) => {
      received.push(String(req.headers["ce-id"]));
      req.resume();
      req.on("end", () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", () => r()));
    const port = (sink.address() as { port: number }).port;
    const relay = new OutboxRelay(store, {
      sink: httpSink({ url: `http://127.0.0.1:${port}/in` }),
      pollInterval: 20,
    });
    const server = createServer({ troupe, outboxRelay: relay, port: 0 });
    const { url } = await server.start();
    try {
      const ready = await call(url, "/readyz");
      assert.deepEqual(
        [ready.status, ready.body],
        [200, { status: "ok", database: "ok", outboxRelay: "running" }],
      );
      const { id } = await store.emit({ type: "served", data: 1 });
      await eventually(() => received.includes(id), "the relay started by the server to send the event");
      await troupe.stop();
      const down = await call(url, "/readyz");
      assert.equal(down.status, 503);
      assert.equal(down.body.status, "unavailable");
      assert.equal((await call(url, "/healthz")).status, 200, "alive, just not ready");
      const refused = await call(url, "/events", { method: "POST", headers: binaryHeaders(), body: "1" });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error.code, "NOT_STARTED");
    } finally {
      await server.stop();
      assert.equal(relay.running, false, "stopping the server stops its relay");
      await new Promise<void>((r) => sink.close(() => r()));
      await troupe.stop();
      await dropSchema(schema);
    }
    await assert.rejects(() => server.start(), /stopped/);
  });

  test("the relay troupe serve starts sends an event emitted in this process at once, not at its next poll", async () => {
    const troupe = testTroupe({ worker: false });
    await troupe.start();
    const schema = storageOf(troupe).schema;
    const received: string[] = [];
    const sink = http.createServer((req, res) => {
      received.push(String(req.headers["ce-id"]));
      req.resume();
      req.on("end", () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", () => r()));
    const port = (sink.address() as { port: number }).port;
    let stop!: (why: string) => void;
    const until = new Promise<string>((r) => (stop = r));
    const lines: string[] = [];
    const out = { print: () => {}, line: (l: string) => void lines.push(l) };
    // A poll interval far longer than the waits below: only the emit's own wakeup can be in time.
    const served = runServe(troupe, { port: "0", "outbox-url": `http://127.0.0.1:${port}/in` }, out, {
      until,
      relay: { pollInterval: "60s" },
    });
    try {
      await eventually(() => lines.some((l) => l.startsWith("troupe serve listening on")), "serve to listen");
      // The relay's first round may find the first event by itself; after that round it
      // sleeps for its poll interval, so the second event must wake it.
      const first = await troupe.emitEvent({ type: "served.first", data: 1 });
      await eventually(() => received.includes(first.id), "the relay to send the first event", 10_000);
      const second = await troupe.emitEvent({ type: "served.second", data: 2 });
      await eventually(
        () => received.includes(second.id),
        "the relay to send the second event (long before its 60 s poll)",
        10_000,
      );
    } finally {
      stop("done");
      assert.equal(await served, 0);
      assert.deepEqual(lines.slice(-1), ["done: stopping"]);
      await new Promise<void>((r) => sink.close(() => r()));
      await troupe.stop();
      await dropSchema(schema);
    }
  });
});
