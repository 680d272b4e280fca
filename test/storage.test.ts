import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { encode } from "../src/codec.js";
import type { TroupeError } from "../src/index.js";
import type { Storage } from "../src/storage/storage.js";
import { testTroupe } from "./helpers.js";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

/**
 * The storage layer on its own, through its semantic operations. Runs unchanged on
 * embedded PGlite and on a real PostgreSQL (TROUPE_TEST_DATABASE_URL).
 */
describe("storage suite", () => {
  const t = testTroupe({ worker: false });
  let s: Storage;
  const W = "worker-a";
  const types = ["thing"];
  before(async () => {
    await t.start();
    s = storageOf(t);
  });
  after(() => t.stop());

  const input = encode({ n: 1 });
  const newActor = (id: string) => s.actors.create({ id, actor: "thing", input, inputJson: '{"n":1}' });

  test("migrations are idempotent and recorded in the ledger", async () => {
    const again = await s.migrate();
    assert.deepEqual(again.applied, []);
    const { rows } = await databaseOf(t).query<{ n: number }>(
      boundSql(t, "SELECT count(*)::int AS n FROM {schema}.migrations"),
    );
    assert.ok(rows[0]!.n >= 3);
    assert.equal(await s.checkSchema(), again.version);
  });

  test("create is idempotent by id; claim takes a free lease once and bumps the fencing version", async () => {
    const a = await newActor("s-1");
    assert.equal(a.created, true);
    assert.equal((await newActor("s-1")).created, false);
    const claimed = await s.actors.claim("s-1", W, 5000, types);
    assert.equal(claimed?.leaseOwner, W);
    assert.equal(claimed?.leaseVersion, a.row.leaseVersion + 1);
    assert.equal(await s.actors.claim("s-1", "worker-b", 5000, types), null, "held lease");
    assert.equal(await s.actors.claim("s-1", W, 5000, ["other"]), null);
  });

  test("fenced append: the lease holder writes; a stale version writes nothing (LOCK_LOST)", async () => {
    await newActor("s-2");
    const row = (await s.actors.claim("s-2", W, 5000, types))!;
    const fence = { actorId: "s-2", leaseVersion: row.leaseVersion, worker: W };
    const v = await s.actors.append(
      fence,
      [{ seq: 0, kind: "step", name: "a", result: encode(1), error: null }],
      5000,
    );
    assert.deepEqual(v, { journalVersion: 1, cancelRequested: false });
    await assert.rejects(
      s.actors.append(
        { ...fence, leaseVersion: fence.leaseVersion - 1 },
        [{ seq: 1, kind: "step", name: "b", result: null, error: null }],
        5000,
      ),
      (e: TroupeError) => e.code === "LOCK_LOST",
    );
    assert.deepEqual(
      (await s.journal.page("s-2", 0, 10)).map((e) => e.name),
      ["a"],
    );
  });

  test("park leaves the actor waiting with a timer; fire completes the wait once and makes the actor runnable", async () => {
    await newActor("s-3");
    const row = (await s.actors.claim("s-3", W, 5000, types))!;
    const fence = { actorId: "s-3", leaseVersion: row.leaseVersion, worker: W };
    await s.actors.park(fence, { seq: 0, kind: "sleep", name: "", until: new Date(Date.now() - 1) }, []);
    const parked = (await s.actors.get("s-3"))!;
    assert.equal(parked.status, "waiting");
    assert.equal(parked.leaseOwner, null);
    assert.equal(parked.parkedOn, W);
    assert.ok((await s.timers.due(100)).some((d) => d.actorId === "s-3"));
    assert.equal(await s.timers.fire("s-3", 0), true);
    assert.equal(await s.timers.fire("s-3", 0), false, "only once");
    const woke = (await s.actors.get("s-3"))!;
    assert.equal(woke.status, "running");
    assert.equal((await s.journal.entry("s-3", 0))?.kind, "sleep");
    assert.ok((await s.actors.claimRunnable(W, 5000, 10, types)).some((r) => r.id === "s-3"));
  });

  test("a timer that is not due yet never fires its wait (a stale local timer after recur)", async () => {
    await newActor("s-3b");
    const row = (await s.actors.claim("s-3b", W, 5000, types))!;
    const fence = { actorId: "s-3b", leaseVersion: row.leaseVersion, worker: W };
    const until = new Date(Date.now() + 60_000);
    await s.actors.park(fence, { seq: 0, kind: "receive", name: "c", until }, []);
    assert.equal(await s.timers.fire("s-3b", 0), false, "not due: the wait stays");
    assert.equal((await s.actors.get("s-3b"))!.status, "waiting");
    assert.equal(await s.journal.entry("s-3b", 0), null);
    assert.equal((await s.timers.dueAt("s-3b", 0))?.getTime(), until.getTime());
  });

  test("finish records the outcome and drops waits, subscriptions and memberships", async () => {
    await newActor("s-4");
    const row = (await s.actors.claim("s-4", W, 5000, types))!;
    const fence = { actorId: "s-4", leaseVersion: row.leaseVersion, worker: W };
    await s.groups.join(fence, [{ seq: 0, kind: "join", name: "g", result: null, error: null }], 5000, "g");
    assert.deepEqual(await s.groups.members("g"), ["s-4"]);
    await s.actors.finish(fence, { status: "completed", output: encode("done") }, []);
    const done = (await s.actors.get("s-4"))!;
    assert.equal(done.status, "completed");
    assert.deepEqual(await s.groups.members("g"), []);
  });

  test("the leader lock has one holder at a time and can be taken over once expired", async () => {
    assert.equal(await s.leaderLock.tryAcquire("leader-x", "a", 60_000), true);
    assert.equal(await s.leaderLock.tryAcquire("leader-x", "b", 60_000), false);
    assert.equal(await s.leaderLock.tryAcquire("leader-x", "a", 60_000), true, "renewal");
    assert.equal(await s.leaderLock.tryAcquire("leader-y", "a", 1), true);
    await new Promise((r) => setTimeout(r, 20)); // let a 1 ms lease lapse
    assert.equal(await s.leaderLock.tryAcquire("leader-y", "b", 60_000), true);
  });

  test("message retention removes read messages and never unread ones", async () => {
    await newActor("r-reader");
    const row = (await s.actors.claim("r-reader", W, 5000, types))!;
    const fence = { actorId: "r-reader", leaseVersion: row.leaseVersion, worker: W };
    await s.subscriptions.subscribe(fence, [], 5000, {
      channel: "news-r",
      mode: "broadcast",
      source: "news-r",
    });
    const publish = async (source: string, extra: Partial<{ directTo: string }> = {}) => {
      const to = { source, directTo: extra.directTo ?? null };
      return (await s.messages.insert({ to, data: encode(1), metadata: {} }, { by: "client" })).ids[0]!;
    };
    const read = await publish("news-r");
    const unread = await publish("news-r");
    await databaseOf(t).query(
      boundSql(t, "UPDATE {schema}.subscriptions SET cursor = $1 WHERE actor_id = 'r-reader'"),
      [read],
    );
    const queued = await publish("jobs-r"); // competing, never claimed
    await s.subscriptions.subscribe(fence, [], 5000, {
      channel: "jobs-r",
      mode: "competing",
      source: "jobs-r",
    });
    const claimed = await publish("jobs-r");
    await databaseOf(t).query(boundSql(t, "UPDATE {schema}.messages SET claimed_by = 'x' WHERE id = $1"), [
      claimed,
    ]);
    const mailbox = await publish("inbox:r-reader", { directTo: "r-reader" }); // live target, unread
    const removed = await s.messages.deleteRead(0, 1000);
    assert.ok(removed >= 2);
    const { rows } = await databaseOf(t).query<{ id: string }>(
      boundSql(t, "SELECT id::text AS id FROM {schema}.messages"),
    );
    const left = new Set(rows.map((r) => r.id));
    assert.ok(!left.has(read), "read broadcast removed");
    assert.ok(!left.has(claimed), "claimed competing removed");
    assert.ok(left.has(unread), "unread broadcast kept");
    assert.ok(left.has(queued), "unclaimed competing kept");
    assert.ok(left.has(mailbox), "unread mailbox of a live actor kept");
    await s.actors.finish(fence, { status: "completed", output: encode(null) }, []);
    await s.messages.deleteRead(0, 1000);
    const { rows: after } = await databaseOf(t).query<{ id: string }>(
      boundSql(t, "SELECT id::text AS id FROM {schema}.messages WHERE id = $1"),
      [mailbox],
    );
    assert.equal(after.length, 0, "a finished actor's unread mail goes");
  });
});

test("migrations are numbered 1, 2, 3 … with no gap and no number used twice", async () => {
  const { loadMigrations } = await import("../src/storage/migrate.js");
  const versions = (await loadMigrations()).map((m) => m.version);
  assert.deepEqual(
    versions,
    versions.map((_, i) => i + 1),
  );
});
