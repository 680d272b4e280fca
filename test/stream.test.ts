import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import pg from "pg";
import { encode } from "../src/codec.js";
import { ValidationError, actor, type ActorContext, type Troupe } from "../src/index.js";
import type { StreamEvent } from "../src/stream/event-stream.js";
import { STREAM_START, comparePositions, parsePosition } from "../src/stream/position.js";
import type { CatchUpOptions, ProjectionProgress } from "../src/stream/projection.js";
import {
  PG_URL,
  REDIS_URL,
  dropSchema,
  eventually,
  freshSchema,
  needsPostgres,
  testTroupe,
} from "./helpers.js";
import { boundSql, sqlRows, sqlRun, sqlTransaction } from "./support/internals.js";

// ---- actors that produce journal entries and messages --------------------------------------

/** Steps and publishes on its own feed, one after the other. */
const writer = actor("stream-writer", async (ctx: ActorContext, input: { steps: number; feed: string }) => {
  for (let i = 0; i < input.steps; i++) {
    await ctx.step(`step-${i}`, () => i * 10);
    await ctx.publish(input.feed, { i }, { metadata: { n: i } });
  }
  return input.steps;
});

/** Subscribes to "news", says it is ready, then receives `n` messages. */
const newsReader = actor("stream-news-reader", async (ctx: ActorContext, input: { n: number }) => {
  await ctx.subscribe("news", "broadcast");
  await ctx.join("stream-news-readers");
  const got: unknown[] = [];
  for (let i = 0; i < input.n; i++) {
    const m = await ctx.receive("news", { timeout: "60s" });
    if (!m) break;
    got.push(m.data);
  }
  return got;
});

const ACTORS = [writer, newsReader];
const NEWS = 4;

/**
 * Several actors' journals (steps, publishes, subscribes, joins, receives), broadcast
 * deliveries, messages published from outside and a direct message.
 */
async function workload(t: Troupe, tag: string, writers = 3, steps = 3): Promise<void> {
  const readers = await Promise.all(
    [1, 2].map((i) => t.spawn(newsReader, { n: NEWS }, { id: `${tag}-reader-${i}` })),
  );
  await eventually(
    async () => (await t.members("stream-news-readers")).length >= 2,
    "news readers to subscribe",
  );
  const ws = await Promise.all(
    Array.from({ length: writers }, (_, i) =>
      t.spawn(writer, { steps, feed: `feed:${tag}-${i}` }, { id: `${tag}-writer-${i}` }),
    ),
  );
  for (let i = 0; i < NEWS; i++) await t.publish("news", { headline: i });
  await t.send(ws[0]!.id, "inbox", { hello: tag });
  await Promise.all([...readers, ...ws].map((r) => r.result({ timeout: "60s" })));
}

// ---- reading helpers --------------------------------------------------------------------------

/** Polls `check` until it returns something other than null. */
async function until<T>(check: () => Promise<T | null>, what: string, timeoutMs = 30_000): Promise<T> {
  return (await eventually(check, what, timeoutMs)) as T;
}

/** Reads the whole stream (what is readable now) in pages of `limit`. */
async function readAll(t: Troupe, limit = 1000, after = STREAM_START): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  let position = after;
  for (;;) {
    const page = await t.readStream({ after: position, limit, foreignTxGrace: 0 });
    out.push(...page.events);
    position = page.position;
    if (page.caughtUp) return out;
  }
}

/**
 * Reads `count` events from `after` in pages of `limit`. A page can end short of what the
 * tables hold while other transactions are in flight (on a real server under load): it then
 * goes on from where it got to, as a projection would.
 */
async function readExactly(
  t: Troupe,
  limit: number,
  count: number,
  after = STREAM_START,
): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  let position = after;
  const deadline = Date.now() + 30_000;
  while (out.length < count) {
    const page = await t.readStream({ after: position, limit, foreignTxGrace: 0 });
    assert.ok(page.events.length <= limit);
    out.push(...page.events);
    position = page.position;
    if (page.caughtUp && out.length < count) {
      if (Date.now() > deadline) throw new Error(`read ${out.length} of ${count} events`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return out;
}

async function tableCounts(t: Troupe): Promise<{ journal: number; message: number }> {
  const rows = await sqlRows<{ j: number; m: number }>(
    t,
    "SELECT (SELECT count(*) FROM {schema}.journal)::int + (SELECT count(*) FROM {schema}.journal_archive)::int AS j, (SELECT count(*) FROM {schema}.messages)::int AS m",
  );
  return { journal: Number(rows[0]!.j), message: Number(rows[0]!.m) };
}

/**
 * The whole stream once every row in the tables is readable (on a real server another
 * transaction in flight may hold the tail back for a moment).
 */
async function settledStream(t: Troupe): Promise<StreamEvent[]> {
  return until(
    async () => {
      const counts = await tableCounts(t);
      const all = await readAll(t);
      return all.length === counts.journal + counts.message ? all : null;
    },
    "every row to be readable in the stream",
    60_000,
  );
}

const key = (e: StreamEvent) =>
  e.kind === "journal" ? `j:${e.actorId}:${e.generation}:${e.seq}` : `m:${e.messageId}`;

/** A read model: events per kind. Idempotent by position, so a replayed batch is not counted twice. */
class CountModel {
  applied = STREAM_START;
  counts = { journal: 0, message: 0 };
  /** What a model without the position check would count. */
  naive = 0;
  apply(e: StreamEvent): void {
    this.naive++;
    if (e.position <= this.applied) return;
    this.counts[e.kind]++;
    this.applied = e.position;
  }
}

/**
 * catchUp, again, until the projection's stored position is `end`: one catchUp stops at the
 * first short page, which other transactions in flight can cause on a real server under load.
 */
async function catchUpTo(t: Troupe, opts: CatchUpOptions, end: string): Promise<ProjectionProgress> {
  const total = { events: 0, batches: 0, position: STREAM_START };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await t.catchUp(opts);
    total.events += r.events;
    total.batches += r.batches;
    total.position = r.position;
    if (r.position === end) return total;
    if (Date.now() > deadline) throw new Error(`projection at ${r.position}, not at ${end}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

const troupes: Troupe[] = [];
function started(t: Troupe): Troupe {
  troupes.push(t);
  return t;
}
after(() => Promise.allSettled(troupes.map((t) => t.stop())));

// ---- order ------------------------------------------------------------------------------------

describe("event stream order", () => {
  test("journals and published messages come in one consistent order, the same page by page", async () => {
    const t = started(testTroupe({ actors: ACTORS }));
    await t.start();
    await workload(t, "ord");
    const all = await settledStream(t);

    // exactly the rows in the tables, each once
    const jrows = await sqlRows<{ k: string }>(
      t,
      "SELECT 'j:' || j.actor_id || ':' || a.generation || ':' || j.seq AS k FROM {schema}.journal j JOIN {schema}.actors a ON a.id = j.actor_id",
    );
    const mrows = await sqlRows<{ k: string }>(t, "SELECT 'm:' || id AS k FROM {schema}.messages");
    const keys = all.map(key);
    assert.equal(new Set(keys).size, keys.length, "no event twice");
    assert.deepEqual([...keys].sort(), [...jrows, ...mrows].map((r) => r.k).sort());
    assert.ok(all.some((e) => e.kind === "journal") && all.some((e) => e.kind === "message"));

    // positions: valid, strictly increasing as plain strings
    for (let i = 1; i < all.length; i++) {
      assert.ok(all[i - 1]!.position < all[i]!.position, `position ${i} increases`);
      assert.equal(comparePositions(all[i - 1]!.position, all[i]!.position), -1);
    }
    for (const e of all) parsePosition(e.position);

    // each actor's journal in seq order; each channel's messages in id order
    const lastSeq = new Map<string, number>();
    const lastId = new Map<string, bigint>();
    for (const e of all) {
      if (e.kind === "journal") {
        assert.ok((lastSeq.get(e.actorId) ?? -1) < e.seq, `${e.actorId} seq ${e.seq} in order`);
        lastSeq.set(e.actorId, e.seq);
      } else {
        const id = BigInt(e.messageId);
        assert.ok((lastId.get(e.channel) ?? 0n) < id, `${e.channel} message ${e.messageId} in order`);
        lastId.set(e.channel, id);
      }
    }
    assert.equal(lastSeq.size, 5, "two readers and three writers journaled");
    assert.equal(lastId.size, 5, "news, three feeds, inbox");

    // a writer publishes after its step: the publish entry and its message follow the step
    const w0 = all.filter((e) => e.kind === "journal" && e.actorId === "ord-writer-0");
    assert.deepEqual(w0.map((e) => (e.kind === "journal" ? `${e.op}:${e.name}` : "")).slice(0, 2), [
      "step:step-0",
      "publish:feed:ord-0",
    ]);
    const step1 = w0.find((e) => e.kind === "journal" && e.name === "step-1");
    assert.equal(step1?.data, 10);
    const feedIdx = all.findIndex((e) => e.kind === "message" && e.channel === "feed:ord-0");
    const pubIdx = all.findIndex(
      (e) => e.kind === "journal" && e.actorId === "ord-writer-0" && e.op === "publish",
    );
    assert.ok(pubIdx >= 0 && pubIdx < feedIdx, "the publishing entry comes before (with) its message");
    const feedMsg = all[feedIdx]!;
    assert.ok(feedMsg.kind === "message");
    assert.deepEqual(
      { data: feedMsg.data, sender: feedMsg.sender, metadata: feedMsg.metadata },
      { data: { i: 0 }, sender: "ord-writer-0", metadata: { n: 0 } },
    );
    assert.ok(feedMsg.at instanceof Date && !Number.isNaN(feedMsg.at.getTime()));

    // a direct message names its channel and target; a delivery is journaled as the message
    const direct = all.find((e) => e.kind === "message" && e.channel === "inbox");
    assert.ok(direct?.kind === "message");
    assert.equal(direct.to, "ord-writer-0");
    assert.deepEqual(direct.data, { hello: "ord" });
    const received = all.filter(
      (e) => e.kind === "journal" && e.actorId === "ord-reader-1" && e.op === "receive",
    );
    assert.equal(received.length, NEWS);
    assert.deepEqual(
      received.map((e) => (e.data as { data: unknown }).data),
      Array.from({ length: NEWS }, (_, i) => ({ headline: i })),
    );

    // page by page, from any position: the same sequence
    for (const limit of [1, 3, 7]) {
      assert.deepEqual(
        (await readExactly(t, limit, all.length)).map((e) => e.position),
        all.map((e) => e.position),
        `pages of ${limit}`,
      );
    }
    for (const i of [0, 5, Math.floor(all.length / 2), all.length - 2]) {
      const next = all.slice(i + 1, i + 5).map((e) => e.position);
      assert.deepEqual(
        (await readExactly(t, 4, next.length, all[i]!.position)).map((e) => e.position),
        next,
      );
    }
    const end = await t.readStream({ after: all.at(-1)!.position, foreignTxGrace: 0 });
    assert.deepEqual(end, { events: [], position: all.at(-1)!.position, caughtUp: true });
    // stable: read again, the same positions and data
    assert.deepEqual(await readExactly(t, 1000, all.length), all);
  });

  test("rows of one transaction: ordered by actor id bytes, resumable inside the transaction", async () => {
    const t = started(testTroupe({ worker: false }));
    await t.start();
    // multi-byte, prefix and case variants, all written by ONE statement (one transaction)
    const ids = ["b", "a", "ab", "é-1", "Z", "😀", "a-"];
    await sqlRun(
      t,
      `
        WITH a AS (
          INSERT INTO {schema}.actors (id, actor, status, input)
          SELECT id, 'raw', 'completed', '\\x00'::bytea FROM unnest($1::text[]) id RETURNING id)
        INSERT INTO {schema}.journal (actor_id, seq, kind, name, result)
        SELECT a.id, s, 'step', 'raw-' || s, $2 FROM a, generate_series(0, 1) s`,
      [ids, encode("x")],
    );
    await sqlRun(
      t,
      "INSERT INTO {schema}.messages (channel, data) SELECT 'raw', $1 FROM generate_series(1, 3)",
      [encode(1)],
    );
    const all = await settledStream(t);
    const expected = [...ids]
      .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
      .flatMap((id) => [`j:${id}:0:0`, `j:${id}:0:1`]);
    assert.deepEqual(all.map(key).slice(0, expected.length), expected);
    assert.equal(all.length, ids.length * 2 + 3);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.position < all[i]!.position);
    // one event at a time, from inside the transaction's rows
    assert.deepEqual(
      (await readExactly(t, 1, all.length)).map((e) => e.position),
      all.map((e) => e.position),
    );
    for (const e of all) {
      if (e.kind === "journal")
        assert.equal((parsePosition(e.position) as { actorId: string }).actorId, e.actorId);
    }
  });

  test("moving a journal into the archive (recur) keeps its positions", async () => {
    const t = started(testTroupe({ actors: [writer] }));
    await t.start();
    await (
      await t.spawn(writer, { steps: 3, feed: "arch-feed" }, { id: "arch-1" })
    ).result({ timeout: "30s" });
    const before = await settledStream(t);
    const mid = before.findIndex((e) => e.kind === "journal" && e.seq === 2);
    assert.ok(mid > 0);
    // what recur does: archive the generation's journal (copying txid) and bump the generation
    await sqlTransaction(t, async (tx) => {
      await tx.query(
        boundSql(
          t,
          `
          INSERT INTO {schema}.journal_archive (actor_id, generation, seq, kind, name, result, error, created_at, txid)
          SELECT j.actor_id, a.generation, j.seq, j.kind, j.name, j.result, j.error, j.created_at, j.txid
            FROM {schema}.journal j JOIN {schema}.actors a ON a.id = j.actor_id WHERE j.actor_id = $1`,
        ),
        ["arch-1"],
      );
      await tx.query(boundSql(t, "DELETE FROM {schema}.journal WHERE actor_id = $1"), ["arch-1"]);
      await tx.query(boundSql(t, "UPDATE {schema}.actors SET generation = generation + 1 WHERE id = $1"), [
        "arch-1",
      ]);
    });
    const afterMove = await settledStream(t);
    assert.deepEqual(afterMove, before, "same events at the same positions");
    // a reader that stopped inside the moved journal goes on without a gap or a repeat
    assert.deepEqual(
      (await readExactly(t, 2, before.length - mid - 1, before[mid]!.position)).map(key),
      before.slice(mid + 1).map(key),
    );
  });
});

/** Generation 0 works, waits for a "go", then continues as new; generation 1 works and ends. */
const looper = actor("stream-looper", async (ctx: ActorContext, input: { gen: number }) => {
  await ctx.step(`work-${input.gen}`, () => input.gen);
  if (input.gen > 0) return input.gen;
  await ctx.subscribe("loop-go", "direct");
  await ctx.join("looper-ready");
  await ctx.receive("loop-go", { timeout: "60s" });
  return ctx.recur({ gen: 1 });
});

describe("event stream across ctx.recur", () => {
  test("a reader inside a generation's journal loses nothing when recur archives it", async () => {
    const t = started(testTroupe({ actors: [looper] }));
    await t.start();
    const ref = await t.spawn(looper, { gen: 0 }, { id: "looper-1" });
    await eventually(async () => (await t.get(ref.id))?.status === "waiting", "generation 0 to wait");
    const before = await settledStream(t);
    const gen0 = before.filter((e) => e.kind === "journal" && e.actorId === ref.id);
    assert.ok(gen0.length >= 3);
    const stop = gen0[1]!.position; // a reader that got this far into generation 0
    await t.send(ref.id, "loop-go", "go");
    assert.equal(await ref.result({ timeout: "30s" }), 1);

    const all = await settledStream(t);
    const archived = all.filter((e) => e.kind === "journal" && e.actorId === ref.id && e.generation === 0);
    assert.ok(archived.length > gen0.length, "generation 0 (with its receive and recur) is in the archive");
    assert.ok(all.some((e) => e.kind === "journal" && e.actorId === ref.id && e.generation === 1));
    // what the reader reads from where it stopped: every entry it had not seen, none missing
    const rest = await readExactly(t, 2, all.filter((e) => e.position > stop).length, stop);
    const seen = new Set([...before.filter((e) => e.position <= stop), ...rest].map(key));
    assert.deepEqual(
      [...new Set(all.map(key))].filter((k) => !seen.has(k)),
      [],
      "nothing lost",
    );
    // when recur copies each entry's txid into the archive, the entries keep their positions
    // and nothing is read twice; without it they come again, later (at least once)
    const kept = gen0.every((e) => archived.some((a) => a.position === e.position));
    const again = rest.filter((e) => before.some((b) => b.position <= stop && key(b) === key(e)));
    assert.equal(again.length === 0, kept, `kept positions: ${kept}, read again: ${again.length}`);
  });
});

// ---- projections ------------------------------------------------------------------------------

describe("projections", () => {
  test("projection resume-from-position: a crashed projection resumes from its stored position, nothing skipped", async () => {
    const t = started(testTroupe({ actors: ACTORS }));
    await t.start();
    await workload(t, "proj");
    const all = await settledStream(t);
    const positions = all.map((e) => e.position);
    const counts = await tableCounts(t);
    assert.ok(all.length > 20);

    const model = new CountModel();
    const delivered: string[] = [];
    const batches: { from: string; to: string; n: number }[] = [];
    let crashAfter = 10;
    const handle = (events: StreamEvent[], b: { from: string; to: string }) => {
      batches.push({ from: b.from, to: b.to, n: events.length });
      for (const e of events) {
        if (delivered.length === crashAfter) throw new Error("projection crashed");
        delivered.push(e.position);
        model.apply(e);
      }
    };
    const opts = { name: "counts", handle, batchSize: 4, foreignTxGrace: 0 };

    // first life: batches of 4; crashes in the middle of the third batch (after its 2nd event)
    assert.equal(await t.projectionPosition("counts"), null);
    await assert.rejects(catchUpTo(t, opts, positions.at(-1)!), /projection crashed/);
    assert.equal(delivered.length, 10);
    assert.deepEqual(delivered, positions.slice(0, 10), "in stream order");
    const crashed = batches.at(-1)!; // with full pages: events 8-11, crashed after handling 8 and 9
    const stored = await t.projectionPosition("counts");
    assert.ok(stored !== null && stored !== STREAM_START);
    assert.equal(stored, crashed.from, "stored after each handled batch, not after the crashed one");
    const resumeAt = positions.indexOf(stored) + 1;
    assert.ok(resumeAt > 0 && resumeAt <= 10);

    // second life: resumes right after the stored position
    crashAfter = Infinity;
    const firstBatch = batches.length;
    const done = await catchUpTo(t, opts, positions.at(-1)!);
    assert.equal(batches[firstBatch]!.from, stored, "read from the stored position");
    assert.equal(delivered[10], positions[resumeAt], "the first event after the stored position comes first");
    assert.deepEqual(delivered.slice(10), positions.slice(resumeAt), "then the rest, in order");
    assert.deepEqual(
      delivered.filter((p, i) => delivered.indexOf(p) !== i),
      positions.slice(resumeAt, 10),
      "at least once: only the crashed batch's handled events came twice",
    );
    assert.deepEqual(new Set(delivered), new Set(positions), "every event seen, none skipped");
    assert.equal(done.events, all.length - resumeAt);
    assert.equal(done.position, positions.at(-1));
    assert.equal(await t.projectionPosition("counts"), positions.at(-1));

    // the read model is exact (it skips positions it already applied); a naive one double counts
    assert.deepEqual(model.counts, counts);
    assert.equal(model.naive, all.length + (10 - resumeAt));

    // caught up: nothing new, nothing again
    const seen = delivered.length;
    assert.deepEqual(await t.catchUp(opts), { events: 0, batches: 0, position: positions.at(-1) });
    assert.equal(delivered.length, seen);

    // later events: a new life handles exactly those
    await (await t.spawn(writer, { steps: 2, feed: "late" }, { id: "proj-late" })).result({ timeout: "30s" });
    const more = await settledStream(t);
    const fresh = more.slice(all.length).map((e) => e.position);
    assert.ok(fresh.length > 0);
    assert.deepEqual(more.slice(0, all.length), all, "the earlier part of the stream did not change");
    await catchUpTo(t, opts, fresh.at(-1)!);
    assert.deepEqual(delivered.slice(seen), fresh);
    assert.deepEqual(model.counts, await tableCounts(t));

    // reset: the read model can be rebuilt from the start
    await t.resetProjection("counts");
    assert.equal(await t.projectionPosition("counts"), STREAM_START);
    const rebuilt = new CountModel();
    await catchUpTo(
      t,
      {
        name: "counts",
        batchSize: 50,
        foreignTxGrace: 0,
        handle: (ev) => ev.forEach((e) => rebuilt.apply(e)),
      },
      fresh.at(-1)!,
    );
    assert.deepEqual(rebuilt.counts, await tableCounts(t));
    assert.equal(rebuilt.naive, more.length);
  });

  test("runProjection follows new events live and stops on abort, keeping its position", async () => {
    const t = started(testTroupe({ actors: [writer] }));
    await t.start();
    const model = new CountModel();
    const ac = new AbortController();
    const running = t.runProjection({
      name: "live",
      batchSize: 3,
      pollInterval: "50ms",
      foreignTxGrace: 0,
      signal: ac.signal,
      handle: (events) => events.forEach((e) => model.apply(e)),
    });
    await (
      await t.spawn(writer, { steps: 4, feed: "live-feed" }, { id: "live-1" })
    ).result({ timeout: "30s" });
    await t.publish("live-news", "outside");
    const all = await settledStream(t);
    await eventually(() => model.applied === all.at(-1)!.position, "the projection to catch up");
    ac.abort();
    const end = await running;
    assert.equal(end.position, all.at(-1)!.position);
    assert.equal(end.events, all.length);
    assert.equal(model.naive, all.length, "no event twice without a crash");
    assert.deepEqual(model.counts, await tableCounts(t));
    assert.equal(await t.projectionPosition("live"), all.at(-1)!.position);
    // a second run starts where the first stopped
    await t.publish("live-news", "after the restart");
    const ac2 = new AbortController();
    const again = t.runProjection({
      name: "live",
      pollInterval: "50ms",
      foreignTxGrace: 0,
      signal: ac2.signal,
      handle: (events) => events.forEach((e) => model.apply(e)),
    });
    await eventually(() => model.naive === all.length + 1, "the new message");
    ac2.abort();
    assert.equal((await again).events, 1);
    // an already aborted signal: returns at once
    const stopped = await t.runProjection({
      name: "live",
      signal: AbortSignal.abort(),
      handle: () => assert.fail("no batch after an abort"),
    });
    assert.equal(stopped.events, 0);
  });

  test(
    "a projection killed -9 in the middle of a batch replays that batch and skips nothing",
    { timeout: 180_000 },
    async () => {
      const schema = freshSchema("stream");
      const dir = await mkdtemp(join(tmpdir(), "troupe-stream-"));
      const database = PG_URL ?? join(dir, "db");
      const out = join(dir, "positions.txt");
      try {
        const t = started(
          testTroupe({
            actors: ACTORS,
            database,
            schema,
            ...(REDIS_URL && PG_URL ? { redis: REDIS_URL } : {}),
          }),
        );
        await t.start();
        await workload(t, "kill", 2, 2);
        const positions = (await settledStream(t)).map((e) => e.position);
        await t.stop(); // PGlite: one process at a time on the directory

        const env = { SP_DATABASE: database, SP_SCHEMA: schema, SP_OUT: out, SP_END: positions.at(-1)! };
        const killed = await runProjector({ ...env, SP_KILL_AT: "7" });
        assert.equal(
          killed.signal,
          "SIGKILL",
          `the child died by SIGKILL (exit ${killed.code}): ${killed.stderr}`,
        );
        const firstLife = (await readFile(out, "utf8")).trim().split("\n");
        assert.deepEqual(firstLife, positions.slice(0, 7));

        const finished = await runProjector(env);
        assert.equal(finished.code, 0, finished.stderr);
        const result = JSON.parse(finished.stdout.trim().split("\n").at(-1)!) as {
          startedFrom: string;
          position: string;
        };
        assert.equal(result.position, positions.at(-1));
        // with full pages: batch 0-4 was stored, batch 5-9 died after 5 and 6, so it resumes at 5
        const resumeAt = positions.indexOf(result.startedFrom) + 1;
        assert.ok(resumeAt > 0 && resumeAt <= 7, "resumed from a stored position at or before the kill");
        const lines = (await readFile(out, "utf8")).trim().split("\n");
        assert.deepEqual(
          lines.slice(7),
          positions.slice(resumeAt),
          "from right after the stored position on",
        );
        assert.deepEqual(new Set(lines), new Set(positions), "every event seen, none skipped");
      } finally {
        await rm(dir, { recursive: true, force: true });
        await dropSchema(schema);
      }
    },
  );
});

const PROJECTOR = fileURLToPath(new URL("./fixtures/stream-projector.ts", import.meta.url));

function runProjector(
  env: Record<string, string>,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", PROJECTOR], {
      env: { ...process.env, SP_NAME: "killable", SP_BATCH: "5", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// ---- concurrent writers (real server) ------------------------------------------------------

describe("concurrent writers", { skip: needsPostgres }, () => {
  const clients: pg.Client[] = [];
  async function client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    clients.push(c);
    return c;
  }
  after(() => Promise.allSettled(clients.map((c) => c.end())));

  async function setup(): Promise<{ t: Troupe; insert: string; end: string }> {
    const t = started(testTroupe({ worker: false }));
    await t.start();
    const insert = boundSql(
      t,
      "INSERT INTO {schema}.messages (channel, data) VALUES ($1, $2) RETURNING id::text AS id",
    );
    const end = (await t.readStream({ foreignTxGrace: 0 })).position;
    return { t, insert, end };
  }

  const ids = (events: StreamEvent[], channel?: string) =>
    events.flatMap((e) => (e.kind === "message" && (!channel || e.channel === channel) ? [e.messageId] : []));

  test("a smaller id that commits later is not skipped (tx A inserts, B inserts, B commits, A commits)", async () => {
    const { t, insert, end } = await setup();
    const a = await client();
    const b = await client();
    await a.query("BEGIN");
    const idA = (await a.query<{ id: string }>(insert, ["race", encode("A")])).rows[0]!.id;
    await b.query("BEGIN");
    const idB = (await b.query<{ id: string }>(insert, ["race", encode("B")])).rows[0]!.id;
    assert.ok(BigInt(idA) < BigInt(idB));
    await b.query("COMMIT");

    // B is committed and visible: a reader of "id > last" would take it now and never see A
    const visible = await sqlRows<{ id: string }>(
      t,
      "SELECT id::text AS id FROM {schema}.messages WHERE channel = 'race' ORDER BY id",
    );
    assert.deepEqual(
      visible.map((r) => r.id),
      [idB],
    );
    // the stream holds B back while A (older, touching troupe's tables) is open, whatever the grace
    const r1 = await t.readStream({ after: end, foreignTxGrace: 0 });
    assert.deepEqual(ids(r1.events, "race"), []);
    assert.equal(r1.position, end);

    await a.query("COMMIT");
    const r2 = await until(async () => {
      const page = await t.readStream({ after: r1.position, foreignTxGrace: 0 });
      return ids(page.events, "race").length === 2 ? page : null;
    }, "both messages");
    assert.deepEqual(ids(r2.events, "race"), [idA, idB]);
    assert.deepEqual(
      (await readExactly(t, 100, 2)).map((e) => e.kind === "message" && e.data),
      ["A", "B"],
    );
  });

  test("the older transaction comes first even when it commits last and its ids are interleaved", async () => {
    const { t, insert, end } = await setup();
    const a = await client();
    const b = await client();
    await b.query("BEGIN");
    const b1 = (await b.query<{ id: string }>(insert, ["mix", encode("b1")])).rows[0]!.id; // B's txid is older
    await a.query("BEGIN");
    const a1 = (await a.query<{ id: string }>(insert, ["mix", encode("a1")])).rows[0]!.id;
    await a.query("COMMIT");
    const b2 = (await b.query<{ id: string }>(insert, ["mix", encode("b2")])).rows[0]!.id;
    const r1 = await t.readStream({ after: end, foreignTxGrace: 0 });
    assert.deepEqual(ids(r1.events), [], "A is committed but B, older, is still open");
    await b.query("COMMIT");
    const all = await until(async () => {
      const events = await readAll(t, 1, end);
      return events.length === 3 ? events : null;
    }, "three messages");
    // transaction order (B, then A), not id order: concurrent publishes to one channel
    assert.deepEqual(ids(all), [b1, b2, a1]);
  });

  test(
    "many writers committing in random order, read live: every committed row once, no rolled-back row",
    { timeout: 120_000 },
    async () => {
      const { t, insert, end } = await setup();
      const WRITERS = 6;
      const TXS = 25;
      const committed: string[] = [];
      const writers = await Promise.all(Array.from({ length: WRITERS }, () => client()));
      const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
      let writing = true;
      const read: StreamEvent[] = [];
      let position = end;
      const reader = (async () => {
        while (writing) {
          const page = await t.readStream({ after: position, limit: 5, foreignTxGrace: 0 });
          read.push(...page.events);
          position = page.position;
          if (page.caughtUp) await pause(3);
        }
      })();
      await Promise.all(
        writers.map(async (c, w) => {
          for (let i = 0; i < TXS; i++) {
            await c.query("BEGIN");
            const mine: string[] = [];
            for (let k = 0; k <= (i + w) % 3; k++) {
              mine.push((await c.query<{ id: string }>(insert, [`w${w}`, encode({ w, i, k })])).rows[0]!.id);
              await pause(Math.random() * 6);
            }
            if ((i * 7 + w) % 10 === 0) {
              await c.query("ROLLBACK");
            } else {
              await c.query("COMMIT");
              committed.push(...mine);
            }
          }
        }),
      );
      writing = false;
      await reader;
      const rest = await until(async () => {
        const tail = await readAll(t, 7, position);
        return read.length + tail.length >= committed.length ? tail : null;
      }, "every committed row");
      const got = ids([...read, ...rest]);
      assert.equal(new Set(got).size, got.length, "no row twice");
      assert.deepEqual([...got].sort(), [...committed].sort(), "exactly the committed rows");
      for (let i = 1; i < got.length; i++) {
        const all = [...read, ...rest];
        assert.ok(all[i - 1]!.position < all[i]!.position);
      }
      // one writer's transactions follow each other: its rows keep their id order
      for (let w = 0; w < WRITERS; w++) {
        const mine = ids([...read, ...rest], `w${w}`).map(BigInt);
        for (let i = 1; i < mine.length; i++) assert.ok(mine[i - 1]! < mine[i]!);
      }
    },
  );

  test("a long transaction outside troupe's schema holds the stream back only for the grace period", async () => {
    const { t, insert, end } = await setup();
    const other = await client();
    await other.query("BEGIN");
    await other.query("SELECT pg_current_xact_id()"); // a write transaction elsewhere: it has an id
    const c = await client();
    const id = (await c.query<{ id: string }>(insert, ["after-foreign", encode(1)])).rows[0]!.id;
    try {
      // the plain xmin bound waits for it, however long it runs
      const strict = await t.readStream({ after: end, foreignTxGrace: null });
      assert.deepEqual(ids(strict.events), []);
      // past the grace period, it is looked past (it holds nothing in troupe's schema)
      const page = await until(async () => {
        const p = await t.readStream({ after: end, foreignTxGrace: "300ms" });
        return ids(p.events).length > 0 ? p : null;
      }, "the stream to look past the foreign transaction");
      assert.deepEqual(ids(page.events), [id]);
      // once it touches troupe's schema, it holds the stream back again, at once
      await other.query(boundSql(t, "SELECT count(*) FROM {schema}.messages"));
      const later = (await c.query<{ id: string }>(insert, ["after-foreign", encode(2)])).rows[0]!.id;
      const held = await t.readStream({ after: page.position, foreignTxGrace: 0 });
      assert.deepEqual(ids(held.events), []);
      await other.query("COMMIT");
      const last = await until(async () => {
        const p = await t.readStream({ after: page.position, foreignTxGrace: 0 });
        return ids(p.events).length > 0 ? p : null;
      }, "the later message");
      assert.deepEqual(ids(last.events), [later]);
    } finally {
      await other.query("ROLLBACK").catch(() => {});
    }
  });
});

// ---- bad input ----------------------------------------------------------------------------------

describe("bad input", () => {
  test("invalid positions, limits and options are ValidationErrors", async () => {
    const t = started(testTroupe({ worker: false }));
    await t.start();
    const txid = "0000000000000001";
    const bad: unknown[] = [
      "nope",
      "0",
      txid,
      `${txid}.`,
      `${txid}.m1`,
      `${txid}.m000000000000000G`,
      `${txid.toUpperCase()}.m0000000000000001`.replace("0000000000000001.m", "000000000000000A.m"),
      `${txid}.m8000000000000000`, // message id beyond bigint
      `${txid}.x0000000000000001`,
      `${txid}.j61.00000000000000`, // short
      `${txid}.j6.0000000000000000`, // odd hex
      `${txid}.jff.0000000000000000`, // not UTF-8
      `${txid}.j00.0000000000000000`, // NUL
      `${txid}.j61.8000000000000000`, // generation beyond int4
      ` ${txid}.m0000000000000001`,
      `${txid}.m0000000000000001\n`,
      "x".repeat(5000),
      123,
      null,
      {},
    ];
    for (const after of bad) {
      await assert.rejects(
        t.readStream({ after: after as string }),
        (err: unknown) => err instanceof ValidationError && err.code === "VALIDATION",
        `after ${JSON.stringify(after)?.slice(0, 40)}`,
      );
    }
    // well-formed, but from a future this database has not reached
    await assert.rejects(
      t.readStream({ after: "7fffffffffffffff.m0000000000000001" }),
      /ahead of this database/,
    );
    for (const limit of [0, -1, 1.5, 10_001, "10", Number.NaN]) {
      await assert.rejects(
        t.readStream({ limit: limit as number }),
        ValidationError,
        `limit ${String(limit)}`,
      );
    }
    await assert.rejects(t.readStream({ foreignTxGrace: "soon" }), ValidationError);
    assert.throws(() => comparePositions("a", STREAM_START), ValidationError);

    const handle = () => {};
    await assert.rejects(t.catchUp({ name: "", handle }), ValidationError);
    await assert.rejects(t.catchUp({ name: "has space", handle }), ValidationError);
    await assert.rejects(t.catchUp({ name: "ok", handle: "no" as never }), ValidationError);
    await assert.rejects(t.catchUp({ name: "ok", handle, batchSize: 0 }), ValidationError);
    await assert.rejects(t.runProjection({ name: "ok", handle, pollInterval: "often" }), ValidationError);
    await assert.rejects(t.runProjection({ name: "ok", handle, signal: {} as AbortSignal }), ValidationError);
    await assert.rejects(t.resetProjection("ok", "garbage"), ValidationError);
    assert.equal(await t.projectionPosition("ok"), null, "bad input changed nothing");

    // positions round-trip
    const p = parsePosition(`${txid}.j${Buffer.from("é😀").toString("hex")}.0000000200000003`);
    assert.deepEqual(p, { kind: "j", txid: 1n, actorId: "é😀", generation: 2, seq: 3 });
    assert.deepEqual(parsePosition(STREAM_START), { kind: "start", txid: 0n });
  });
});
