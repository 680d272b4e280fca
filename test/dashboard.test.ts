/**
 * The web dashboard: real HTTP requests against `startDashboard` on a real troupe (embedded
 * PGlite or Postgres + Redis), its page run in a fake DOM, and `troupe dashboard` as a child
 * process.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { actor, NonRetryableError, type ActorContext, type ChannelMode, type Troupe } from "../src/index.js";
import { startDashboard, type Dashboard } from "../src/dashboard/index.js";
import { dashboardPage } from "../src/dashboard/page.js";
import { runPage, type FakeElement } from "./fixtures/dash-dom.js";
import { dropSchema, eventually, freshSchema, PG_URL, testTroupe } from "./helpers.js";
import { runNode, type NodeRun } from "./support/run-node.js";
import { storageOf } from "./support/internals.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));

/** Subscribes, optionally joins a group, takes `take` messages, then sleeps (waiting) for the test. */
const consumer = actor(
  "dash-consumer",
  async (ctx: ActorContext, input: { channel: string; mode: ChannelMode; take: number; group?: string }) => {
    await ctx.subscribe(input.channel, input.mode);
    if (input.group) await ctx.join(input.group);
    const got: unknown[] = [];
    for (let i = 0; i < input.take; i++)
      got.push((await ctx.receive(input.channel, { timeout: "1h" }))?.data);
    await ctx.step("took", () => got);
    await ctx.sleep("1h");
  },
);
const quick = actor("dash-quick", async (ctx: ActorContext, input: { n?: number; html?: string }) => {
  return await ctx.step("double", () => ({ doubled: (input.n ?? 0) * 2, html: input.html ?? null }));
});
const broken = actor("dash-broken", async (ctx: ActorContext) => {
  await ctx.step("charge", () => {
    throw new NonRetryableError("card declined");
  });
});
const recurring = actor("dash-recurring", async (ctx: ActorContext, input: { n: number }) => {
  await ctx.step(`gen-${input.n}`, () => input.n);
  if (input.n < 1) return ctx.recur({ n: input.n + 1 });
  return { generations: input.n + 1 };
});

const XSS_ID = "<img/src=x/onerror=alert(1)>";
const { html: PAGE_HTML, script: PAGE_SCRIPT } = dashboardPage(); // the page from its asset files
const XSS_INPUT = "<script>alert('pwned')</script>";

const CONSUMERS = {
  b1: { channel: "dash-news", mode: "broadcast", take: 0, group: "dash-room" },
  b2: { channel: "dash-news", mode: "broadcast", take: 2, group: "dash-room" },
  c1: { channel: "dash-jobs", mode: "competing", take: 0, group: "dash-room" },
  c2: { channel: "dash-jobs", mode: "competing", take: 1 },
  d1: { channel: "dash-inbox", mode: "direct", take: 0 },
  d2: { channel: "dash-inbox", mode: "direct", take: 1 },
} as const;

interface Reply {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

async function get(base: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(new URL(path, base), init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, headers: res.headers, text };
}

/** A raw request with a Host header of our choosing (fetch does not let one set it). */
function rawGet(base: string, path: string, host: string): Promise<{ status: number; body: any }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path, method: "GET", headers: { host } },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Reads Server-Sent Events from `path` until `count` events of type `type` arrived. */
async function readEvents(
  base: string,
  path: string,
  count: number,
  init: RequestInit = {},
): Promise<{ events: { event: string; data: any }[]; contentType: string | null }> {
  const ac = new AbortController();
  const res = await fetch(new URL(path, base), { ...init, signal: ac.signal });
  assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
  const events: { event: string; data: any }[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const timer = setTimeout(() => ac.abort(), 10_000);
  try {
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split("\n")
            .filter((l) => l && !l.startsWith(":"))
            .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]),
        );
        if (fields.event) events.push({ event: fields.event, data: JSON.parse(fields.data ?? "null") });
      }
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return { events, contentType: res.headers.get("content-type") };
}

describe("web dashboard", () => {
  let t: Troupe;
  let dash: Dashboard;
  let base: string;
  const allIds = [...Object.keys(CONSUMERS), "q1", "q2", XSS_ID, "broken-1", "recurring-1"];

  before(async () => {
    t = testTroupe({ actors: [consumer, quick, broken, recurring] });
    await t.start();
    // Published before anyone subscribed: a broadcast cursor starts after these, so no backlog.
    for (let i = 0; i < 2; i++) await t.publish("dash-news", { early: i });
    for (const [id, input] of Object.entries(CONSUMERS)) await t.spawn(consumer, input, { id });
    await t.spawn(quick, { n: 1 }, { id: "q1" });
    await t.spawn(quick, { n: 2 }, { id: "q2" });
    await t.spawn(quick, { html: XSS_INPUT }, { id: XSS_ID });
    await t.spawn(broken, {}, { id: "broken-1" });
    await t.spawn(recurring, { n: 0 }, { id: "recurring-1" });
    await eventually(async () => {
      for (const id of Object.keys(CONSUMERS)) if ((await t.get(id))?.status !== "waiting") return false;
      return true;
    }, "every consumer subscribed and waiting");
    // broadcast: b2 reads 2 of 3, b1 none; competing: c2 claims 1 of 4; direct: 2 for d1, none for d2
    // (d2 waits in receive), 1 for b1's mailbox, which b1 never subscribed to (not counted).
    for (let i = 0; i < 3; i++) await t.publish("dash-news", { i });
    for (let i = 0; i < 4; i++) await t.publish("dash-jobs", { i });
    await t.send("d1", "dash-inbox", { hello: 1 });
    await t.send("d1", "dash-inbox", { hello: 2 });
    await t.send("b1", "dash-inbox", { unseen: true });
    const took = async (id: string) => {
      for await (const e of t.history(id)) if (e.name === "took") return true;
      return false;
    };
    await eventually(async () => (await took("b2")) && (await took("c2")), "b2 and c2 took their messages");
    await eventually(async () => {
      for (const id of ["b2", "c2"]) if ((await t.get(id))?.status !== "waiting") return false;
      for (const id of ["q1", "q2", XSS_ID, "recurring-1"])
        if ((await t.get(id))?.status !== "completed") return false;
      return (await t.get("broken-1"))?.status === "failed";
    }, "every actor in its expected status");
    dash = await startDashboard(t, { port: 0 });
    base = dash.url;
  });
  after(async () => {
    await dash?.close();
    const schema = storageOf(t).schema;
    await t.stop();
    await dropSchema(schema);
  });

  test("startDashboard binds 127.0.0.1 and reports the real port", () => {
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(dash.host, "127.0.0.1");
    assert.ok(dash.port > 0);
    assert.equal(new URL(base).port, String(dash.port));
  });

  test("actors: the list, filters by status, actor type and id, newest first", async () => {
    const all = await get(base, "api/actors?limit=100");
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.body.items.map((a: any) => a.id).sort(), [...allIds].sort());
    assert.equal(all.body.nextCursor, undefined);
    const started = all.body.items.map((a: any) => Date.parse(a.startedAt));
    assert.deepEqual(
      started,
      [...started].sort((a, b) => b - a),
      "newest first",
    );
    const q1 = all.body.items.find((a: any) => a.id === "q1");
    assert.deepEqual(
      { actor: q1.actor, status: q1.status, input: q1.input, output: q1.output },
      { actor: "dash-quick", status: "completed", input: { n: 1 }, output: { doubled: 2, html: null } },
    );

    const ids = async (query: string) => {
      const r = await get(base, `api/actors?${query}`);
      assert.equal(r.status, 200, `${query}: ${r.text}`);
      return r.body.items.map((a: any) => a.id).sort();
    };
    assert.deepEqual(await ids("status=waiting"), Object.keys(CONSUMERS).sort());
    assert.deepEqual(
      await ids("status=failed,completed"),
      ["broken-1", "q1", "q2", "recurring-1", XSS_ID].sort(),
    );
    assert.deepEqual(await ids("actor=dash-quick"), ["q1", "q2", XSS_ID].sort());
    assert.deepEqual(await ids("actor=dash-quick&status=failed"), []);
    assert.deepEqual(await ids(`idContains=${encodeURIComponent("onerror")}`), [XSS_ID]);
    assert.deepEqual(await ids("idContains=b&status=waiting"), ["b1", "b2"]);
  });

  test("actors: cursor pagination visits every actor once, in the list's order", async () => {
    const whole = (await get(base, "api/actors?limit=100")).body.items.map((a: any) => a.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await get(base, `api/actors?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.items.length <= 3);
      seen.push(...r.body.items.map((a: any) => a.id));
      cursor = r.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    assert.equal(pages, Math.ceil(allIds.length / 3));
    assert.deepEqual(seen, whole);
  });

  test("one actor: info and history; archived generations first; failure recorded", async () => {
    const q = await get(base, "api/actors/q1");
    assert.equal(q.status, 200, q.text);
    assert.equal(q.body.actor.id, "q1");
    assert.equal(q.body.truncated, false);
    assert.deepEqual(
      q.body.history.map((e: any) => [e.generation, e.seq, e.kind, e.name, e.result]),
      [[0, 0, "step", "double", { doubled: 2, html: null }]],
    );
    assert.ok(!Number.isNaN(Date.parse(q.body.history[0].at)));

    const r = await get(base, "api/actors/recurring-1");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.actor.generation, 1);
    assert.deepEqual(r.body.actor.output, { generations: 2 });
    const steps = r.body.history
      .filter((e: any) => e.kind === "step")
      .map((e: any) => [e.generation, e.name]);
    assert.deepEqual(steps, [
      [0, "gen-0"],
      [1, "gen-1"],
    ]);

    const b = await get(base, "api/actors/broken-1");
    assert.equal(b.body.actor.status, "failed");
    assert.equal(b.body.actor.error.message, "card declined");
    assert.equal(b.body.history[0].error.message, "card declined");

    // An id with characters that need encoding in a path.
    const x = await get(base, `api/actors/${encodeURIComponent(XSS_ID)}`);
    assert.equal(x.status, 200, x.text);
    assert.equal(x.body.actor.id, XSS_ID);
    assert.deepEqual(x.body.actor.input, { html: XSS_INPUT });

    // ?limit cuts the history and says so.
    const cut = await get(base, "api/actors/b2?limit=2");
    assert.equal(cut.status, 200, cut.text);
    assert.equal(cut.body.history.length, 2);
    assert.equal(cut.body.truncated, true);
    const full = await get(base, "api/actors/b2");
    assert.ok(full.body.history.length > 2);
    assert.deepEqual(cut.body.history, full.body.history.slice(0, 2));
  });

  test("channels: mode, subscribers, waiting, backlog and behind match the scenario", async () => {
    const r = await get(base, "api/channels");
    assert.equal(r.status, 200, r.text);
    const byName = Object.fromEntries(r.body.items.map((c: any) => [c.name, c]));
    assert.deepEqual(Object.keys(byName), ["dash-inbox", "dash-jobs", "dash-news"]);
    const shape = (c: any) => ({
      mode: c.mode,
      subscribers: c.subscribers,
      waiting: c.waiting,
      backlog: c.backlog,
      behind: c.behind,
    });
    // broadcast: 2 before the subscriptions, then 3; b2 read 2, b1 none → 3 after the slowest cursor.
    assert.deepEqual(shape(byName["dash-news"]), {
      mode: "broadcast",
      subscribers: 2,
      waiting: 0,
      backlog: 3,
      behind: 2,
    });
    // competing: 4 published, c2 claimed 1 → 3 unclaimed.
    assert.deepEqual(shape(byName["dash-jobs"]), {
      mode: "competing",
      subscribers: 2,
      waiting: 0,
      backlog: 3,
      behind: null,
    });
    // direct: 2 in d1's mailbox; d2 waits in receive on an empty one; b1's mail is not counted
    // (b1 is not subscribed to dash-inbox).
    assert.deepEqual(shape(byName["dash-inbox"]), {
      mode: "direct",
      subscribers: 2,
      waiting: 1,
      backlog: 2,
      behind: 1,
    });
    for (const c of r.body.items) {
      const at = Date.parse(c.oldestBacklogAt);
      assert.ok(
        at > Date.now() - 10 * 60_000 && at <= Date.now() + 60_000,
        `${c.name}: ${c.oldestBacklogAt}`,
      );
    }

    // A message read moves the numbers: b1 is not waiting, so publish one more and check +1.
    await t.publish("dash-news", { i: 3 });
    const again = await get(base, "api/channels");
    const news = again.body.items.find((c: any) => c.name === "dash-news");
    assert.equal(news.backlog, 4);

    // Keyset pages by name.
    const p1 = await get(base, "api/channels?limit=2");
    assert.deepEqual(
      p1.body.items.map((c: any) => c.name),
      ["dash-inbox", "dash-jobs"],
    );
    assert.equal(p1.body.nextCursor, "dash-jobs");
    const p2 = await get(base, `api/channels?limit=2&cursor=${encodeURIComponent(p1.body.nextCursor)}`);
    assert.deepEqual(
      p2.body.items.map((c: any) => c.name),
      ["dash-news"],
    );
    assert.equal(p2.body.nextCursor, undefined);
  });

  test("groups: sizes, and one group's members", async () => {
    const r = await get(base, "api/groups");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.items, [{ group: "dash-room", members: 3 }]);
    const g = await get(base, "api/groups/dash-room");
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body, { group: "dash-room", members: ["b1", "b2", "c1"] });
    const none = await get(base, "api/groups/no-such-group");
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, "NOT_FOUND");
  });

  test("stats: troupe.stats() with the outbox counts; ?actor narrows it", async () => {
    const r = await get(base, "api/stats");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.stats.byStatus, {
      running: 0,
      waiting: 6,
      completed: 4,
      failed: 1,
      cancelled: 0,
      compensating: 0,
    });
    assert.equal(r.body.stats.completed, 4);
    assert.equal(typeof r.body.stats.durationMs.p50, "number");
    assert.deepEqual(r.body.outbox, { pending: 0, processing: 0, sent: 0, dead: 0 });
    const one = await get(base, "api/stats?actor=dash-quick");
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.stats.byStatus.completed, 3);
    assert.equal(one.body.stats.byStatus.waiting, 0);
  });

  test("workers: this process's worker, with a heartbeat age, and the leader", async () => {
    const r = await eventually(async () => {
      const x = await get(base, "api/workers");
      return x.body.items.some((w: any) => w.leader) ? x : undefined;
    }, "a leader among the workers");
    assert.ok(r);
    const mine = r.body.items.filter((w: any) => w.pid === process.pid && w.hostname === hostname());
    assert.ok(mine.length >= 1, r.text);
    assert.ok(mine[0].heartbeatAgeMs >= 0 && mine[0].heartbeatAgeMs < 60_000);
    assert.ok(mine[0].concurrency > 0);
  });

  test("the Troupe methods behind it: channels() pages and checks its options, workers(), ping()", async () => {
    const all = await t.channels();
    assert.deepEqual(
      all.items.map((c) => c.name),
      ["dash-inbox", "dash-jobs", "dash-news"],
    );
    assert.equal(all.nextCursor, undefined);
    const first = await t.channels({ limit: 2 });
    assert.deepEqual(
      first.items.map((c) => c.name),
      ["dash-inbox", "dash-jobs"],
    );
    assert.equal(first.nextCursor, "dash-jobs");
    const rest = await t.channels({ limit: 2, cursor: first.nextCursor });
    assert.deepEqual(rest, { items: [all.items[2]] });
    for (const bad of [
      { limit: 0 },
      { limit: 1001 },
      { limit: 1.5 },
      { cursor: "" },
      { cursor: "x".repeat(300) },
    ])
      await assert.rejects(t.channels(bad), { code: "VALIDATION" }, JSON.stringify(bad));
    await assert.rejects(t.channels(null as never), { code: "VALIDATION" });
    const workers = await t.workers();
    assert.ok(workers.some((w) => w.id === t.workerId && w.pid === process.pid));
    await t.ping();
    const idle = testTroupe();
    await assert.rejects(idle.ping(), { code: "NOT_STARTED" });
    await assert.rejects(idle.channels(), { code: "NOT_STARTED" });
    await assert.rejects(idle.workers(), { code: "NOT_STARTED" });
    assert.throws(() => idle.createOutboxRelay({ sink: { send: async () => {} } }), { code: "NOT_STARTED" });
  });

  test("live: /api/events is an event stream with a tick at once and then every interval", async () => {
    const fast = await startDashboard(t, { port: 0, refreshInterval: "150ms" });
    try {
      const started = Date.now();
      const { events, contentType } = await readEvents(fast.url, "api/events", 3);
      assert.match(contentType ?? "", /^text\/event-stream/);
      assert.deepEqual(
        events.map((e) => [e.event, e.data.seq]),
        [
          ["tick", 1],
          ["tick", 2],
          ["tick", 3],
        ],
      );
      assert.ok(Date.now() - started >= 250, "ticks are spaced by the interval");
      assert.ok(!Number.isNaN(Date.parse(events[0]!.data.at)));
    } finally {
      await fast.close();
    }
  });

  test("close() ends open event streams and stops listening", async () => {
    const d = await startDashboard(t, { port: 0, refreshInterval: "1h" });
    const res = await fetch(new URL("api/events", d.url));
    const reader = res.body!.getReader();
    await reader.read(); // the first tick
    const closing = d.close();
    const ended = await Promise.race([
      (async () => {
        for (;;) if ((await reader.read()).done) return true;
      })(),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
    ]);
    assert.equal(ended, true, "the stream ended");
    await closing;
    await assert.rejects(fetch(new URL("api/stats", d.url)));
    await d.close(); // idempotent
  });

  test("token: every request needs it, as a Bearer header or ?token=", async () => {
    const d = await startDashboard(t, { port: 0, token: "s3cret-token" });
    try {
      for (const path of ["", "api/stats", "api/actors", "api/events", "api/actors/q1"]) {
        const none = await get(d.url, path);
        assert.equal(none.status, 401, `${path || "/"} without a token`);
        assert.equal(none.body.error.code, "UNAUTHORIZED");
        assert.equal(none.headers.get("www-authenticate"), "Bearer");
        const wrong = await get(d.url, path, { headers: { authorization: "Bearer s3cret-tokeX" } });
        assert.equal(wrong.status, 401, `${path || "/"} with a wrong token`);
        const wrongQuery = await get(d.url, `${path}?token=s3cret`);
        assert.equal(wrongQuery.status, 401, `${path || "/"} with a wrong ?token`);
      }
      const header = await get(d.url, "api/stats", { headers: { authorization: "Bearer s3cret-token" } });
      assert.equal(header.status, 200, header.text);
      const query = await get(d.url, "api/actors?limit=1&token=s3cret-token");
      assert.equal(query.status, 200, query.text);
      assert.equal(query.body.items.length, 1);
      const page = await get(d.url, "?token=s3cret-token");
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
      const { events } = await readEvents(d.url, "api/events?token=s3cret-token", 1);
      assert.equal(events[0]!.event, "tick");
      // The page passes its ?token= on to the API (as a header) and to the event stream.
      const shown = runPage(PAGE_SCRIPT, d.url, { token: "s3cret-token" });
      await eventually(
        () => [...shown.byId("view").texts()].some((n) => n.data === "recurring-1"),
        "the page's actors table with the token",
      );
      assert.equal(shown.byId("banner").textContent, "");
      assert.deepEqual(shown.eventSourceUrls, [`${d.url}api/events?token=s3cret-token`]);
      // With a token, other Host names are fine (the token is the protection).
      const other = await rawGet(d.url, "/api/stats?token=s3cret-token", "dashboard.example.com");
      assert.equal(other.status, 200);
    } finally {
      await d.close();
    }
  });

  test("without a token, a loopback dashboard answers only for localhost Host names (DNS rebinding)", async () => {
    const evil = await rawGet(base, "/api/actors", "attacker.example:80");
    assert.equal(evil.status, 403);
    assert.equal(evil.body.error.code, "HOST_NOT_ALLOWED");
    const port = new URL(base).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, "localhost"]) {
      const ok = await rawGet(base, "/api/stats", host);
      assert.equal(ok.status, 200, host);
    }
  });

  test("the page: static, no user data, strict CSP, scripts never use innerHTML", async () => {
    const a = await get(base, "");
    const b = await get(base, "index.html");
    assert.equal(a.status, 200);
    assert.match(a.headers.get("content-type") ?? "", /^text\/html; charset=utf-8/);
    assert.equal(a.text, PAGE_HTML);
    assert.equal(b.text, a.text, "the page never varies");
    for (const data of [XSS_ID, "src=x", XSS_INPUT, "pwned", "dash-news", "dash-room", "recurring-1"])
      assert.ok(!a.text.includes(data), `the page holds no data (${data})`);
    const csp = a.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(a.headers.get("x-frame-options"), "DENY");
    assert.equal(a.headers.get("x-content-type-options"), "nosniff");
    assert.doesNotMatch(
      PAGE_SCRIPT,
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
    );
    // JSON answers cannot be read as markup either: < > & are \u escapes.
    const j = await get(base, `api/actors/${encodeURIComponent(XSS_ID)}`);
    assert.match(j.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(j.headers.get("x-content-type-options"), "nosniff");
    assert.ok(!j.text.includes("<") && !j.text.includes(">"), j.text);
    assert.ok(j.text.includes("\\u003cimg/src=x/onerror=alert(1)\\u003e"));
  });

  test("the page's script renders every view from the API, user data as text only", async () => {
    const page = runPage(PAGE_SCRIPT, base);
    const results = () => page.byId("view");
    const findText = (root: FakeElement, text: string) =>
      [...root.texts()].some((n) => n.data.includes(text));
    const settle = (what: string, check: () => boolean) =>
      eventually(() => {
        const banner = page.byId("banner");
        if (!banner.hidden && banner.textContent)
          throw new Error(`the page shows an error: ${banner.textContent}`);
        return check();
      }, what);

    // Actors (the default view) and the stats bar.
    await settle("the actors table", () => findText(results(), XSS_ID) && findText(results(), "recurring-1"));
    await settle("the stats bar", () => findText(page.byId("stats"), "waiting"));
    const link = [...results().descendants()].find((e) => e.tagName === "A" && e.textContent === XSS_ID);
    assert.ok(link, "the XSS id is a link's text");
    assert.equal(link.getAttribute("href"), `#actor/${encodeURIComponent(XSS_ID)}`);
    assert.deepEqual(page.eventSourceUrls, [new URL("api/events", base).href]);

    // One actor, with its input rendered as text.
    page.navigate(`#actor/${encodeURIComponent(XSS_ID)}`);
    await settle("the actor view", () => findText(results(), XSS_INPUT) && findText(results(), "double"));
    page.navigate("#actor/recurring-1");
    await settle(
      "the recurring actor's history",
      () => findText(results(), "gen-1") && findText(results(), "0.0"),
    );
    page.navigate("#actor/no-such-actor");
    await settle("an unknown actor", () => findText(results(), "no actor with id"));

    page.navigate("#channels");
    await settle(
      "the channels table",
      () => findText(results(), "dash-news") && findText(results(), "competing"),
    );
    const jobsRow = [...results().descendants()].find(
      (e) => e.tagName === "TR" && e.textContent.startsWith("dash-jobs"),
    );
    assert.ok(jobsRow);
    assert.deepEqual(jobsRow.children.map((c) => c.textContent).slice(0, 6), [
      "dash-jobs",
      "competing",
      "2",
      "0",
      "3",
      "–",
    ]);

    page.navigate("#groups");
    await settle("the groups table", () => findText(results(), "dash-room"));
    page.navigate("#group/dash-room");
    await settle("the group's members", () => findText(results(), "c1") && findText(results(), "3 members"));
    page.navigate("#workers");
    await settle("the workers table", () => findText(results(), hostname()));

    // Filters: the status button in the stats bar lists failed actors only.
    const failedButton = [...page.byId("stats").descendants()].find(
      (e) => e.tagName === "BUTTON" && e.textContent.startsWith("failed"),
    );
    assert.ok(failedButton);
    failedButton.click();
    await settle("the failed actors", () => findText(results(), "broken-1") && !findText(results(), "q1"));

    // A tick refreshes without errors; nothing in the tree is markup made from data.
    page.tick();
    await settle("after a tick", () => findText(results(), "broken-1"));
    const tags = new Set([...page.body.descendants()].map((e) => e.tagName));
    assert.ok(!tags.has("IMG") && !tags.has("SCRIPT"), [...tags].join(","));
    assert.deepEqual(page.errors, []);
  });

  test("bad requests: 400 VALIDATION for bad parameters, 404 for unknown things, 405 for writes", async () => {
    const bad = async (path: string, status: number, code: string, message?: RegExp) => {
      const r = await get(base, path);
      assert.equal(r.status, status, `${path}: ${r.text}`);
      assert.equal(r.body?.error?.code, code, `${path}: ${r.text}`);
      if (message) assert.match(r.body.error.message, message, path);
    };
    await bad("api/actors?status=bogus", 400, "VALIDATION", /status "bogus"/);
    await bad("api/actors?status=", 400, "VALIDATION");
    await bad("api/actors?status=waiting,", 400, "VALIDATION");
    await bad("api/actors?cursor=not-a-cursor", 400, "VALIDATION", /cursor/);
    const forged = Buffer.from(JSON.stringify(["2024-13-45 99:00:00+00", "x"])).toString("base64url");
    await bad(`api/actors?cursor=${forged}`, 400, "VALIDATION", /cursor/);
    await bad("api/actors?limit=0", 400, "VALIDATION", /limit/);
    await bad("api/actors?limit=abc", 400, "VALIDATION", /limit/);
    await bad("api/actors?limit=1001", 400, "VALIDATION", /limit/);
    await bad("api/actors?idContains=", 400, "VALIDATION");
    await bad("api/actors?stauts=waiting", 400, "VALIDATION", /unknown query parameter "stauts"/);
    await bad("api/actors?limit=1&limit=2", 400, "VALIDATION", /more than once/);
    await bad("api/actors/no-such-actor", 404, "NOT_FOUND", /no-such-actor/);
    await bad(`api/actors/${"x".repeat(300)}`, 400, "VALIDATION");
    await bad("api/actors/%E0%A4%A", 400, "VALIDATION");
    await bad("api/actors/q1?limit=-1", 400, "VALIDATION");
    await bad("api/actors/q1?pageSize=5", 400, "VALIDATION");
    await bad("api/channels?limit=5000", 400, "VALIDATION");
    await bad("api/stats?actor=", 400, "VALIDATION");
    await bad("api/groups?x=1", 400, "VALIDATION");
    await bad("api/nothing-here", 404, "NOT_FOUND");
    await bad("api/actors/a/b", 404, "NOT_FOUND");
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await get(base, "api/actors", { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.body.error.code, "METHOD_NOT_ALLOWED");
      assert.equal(r.headers.get("allow"), "GET, HEAD");
    }
  });

  test("startDashboard rejects bad options and a troupe that is not started", async () => {
    await assert.rejects(startDashboard(t, { port: -1 }), { code: "VALIDATION" });
    await assert.rejects(startDashboard(t, { port: 1.5 }), { code: "VALIDATION" });
    await assert.rejects(startDashboard(t, { token: "" }), { code: "VALIDATION" });
    await assert.rejects(startDashboard(t, { refreshInterval: "10ms" }), { code: "VALIDATION" });
    await assert.rejects(startDashboard(t, { refreshInterval: "soon" }), { code: "VALIDATION" });
    await assert.rejects(startDashboard(testTroupe(), { port: 0 }), { code: "NOT_STARTED" });
    // The port is taken: the listen error, not a half-started dashboard.
    await assert.rejects(startDashboard(t, { port: dash.port }), { code: "EADDRINUSE" });
  });
});

describe("troupe dashboard (CLI)", () => {
  const schema = freshSchema("dash");
  let dir: string | undefined;
  let connection: string[];

  before(async () => {
    dir = PG_URL ? undefined : await mkdtemp(join(tmpdir(), "troupe-dash-"));
    const worker = testTroupe({ actors: [quick], database: PG_URL ?? dir, schema });
    await worker.start();
    try {
      await worker.spawn(quick, { n: 21 }, { id: "cli-q1" });
      await eventually(async () => (await worker.get("cli-q1"))?.status === "completed", "cli-q1 completed");
    } finally {
      await worker.stop(); // embedded PGlite is single-process: the CLI opens the directory next
    }
    connection = ["--database", (PG_URL ?? dir)!, "--schema", schema];
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    else await dropSchema(schema);
  });

  function env(): NodeJS.ProcessEnv {
    const e = { ...process.env };
    delete e.TROUPE_DATABASE_URL;
    delete e.DATABASE_URL;
    delete e.REDIS_URL;
    delete e.TROUPE_DASHBOARD_TOKEN;
    return e;
  }

  function cli(args: string[]): Promise<NodeRun> {
    return runNode(["src/cli.ts", ...args], env());
  }

  test("bad flag values exit 2 with VALIDATION before the database is opened", async () => {
    // A database that cannot be opened: had it been tried, the error would be another one.
    const nowhere = ["--database", "postgres://nobody@127.0.0.1:1/none"];
    for (const [args, message] of [
      [["--port", "http"], /--port/],
      [["--port", "65536"], /--port/],
      [["--port=-1"], /--port/],
      [["--refresh", "10ms"], /--refresh/],
      [["--refresh", "sometimes"], /--refresh/],
      [["--token", ""], /--token/],
      [["--host", ""], /--host/],
      [["extra"], /no arguments/],
    ] as const) {
      const r = await cli(["dashboard", ...args, ...nowhere]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /\[VALIDATION\]/, args.join(" "));
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(r.stdout, "");
    }
    const other = await cli(["list", "--refresh", "5s", ...nowhere]);
    assert.equal(other.code, 1, other.stderr);
    assert.match(other.stderr, /--refresh is not an option of "list"/);
  });

  test("`troupe dashboard --port 0` serves the JSON API until SIGTERM", async () => {
    const args = ["dashboard", "--port", "0", "--token", "cli-token", ...connection];
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
      cwd: REPO,
      env: env(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      const url = await eventually(
        () => {
          if (child.exitCode !== null) throw new Error(`the CLI exited ${child.exitCode}: ${stderr}`);
          return /troupe dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)?.[1];
        },
        "the dashboard's URL on stdout",
        60_000,
      );
      assert.ok(url);
      assert.doesNotMatch(stdout, /cli-token/, "the token is not printed");
      const auth = { headers: { authorization: "Bearer cli-token" } };
      const r = await get(url, "api/actors", auth);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(
        r.body.items.map((a: any) => [a.id, a.status, a.output]),
        [["cli-q1", "completed", { doubled: 42, html: null }]],
      );
      const h = await get(url, "api/actors/cli-q1", auth);
      assert.equal(h.body.history[0].name, "double");
      assert.equal((await get(url, "api/stats")).status, 401);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /SIGTERM: stopping/);
  });
});
