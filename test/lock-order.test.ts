/**
 * One lock order everywhere (actor row, then its timer, then its subscriptions, then message
 * claims): a receive timeout firing while a delivery takes the same actor must never deadlock.
 * Before the fix FIRE deleted the timer and then updated the actor while DELIVER locked the
 * actor and then deleted the timer: Postgres broke the cycle with 40P01 "deadlock detected"
 * (after deadlock_timeout, ~1 s of stall). Needs several connections, so a real PostgreSQL.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import pg from "pg";
import { actor, type Logger, type Troupe } from "../src/index.js";
import { PG_URL, dropSchema, eventually, freshSchema, needsPostgres, testTroupe } from "./helpers.js";
import { storageOf } from "./support/internals.js";

const ACTORS = Number(process.env.LO_ACTORS ?? 150);
const MESSAGES_EACH = Number(process.env.LO_MSGS ?? 40);
const SENDERS = Number(process.env.LO_SENDERS ?? 3);
const WORKERS = 3;

const receiver = actor("lock-order-receiver", async (ctx, input: { timeoutMs: number }) => {
  await ctx.subscribe("lo-inbox", "direct");
  await ctx.join("lo-all");
  let got = 0;
  let timeouts = 0;
  while (got < MESSAGES_EACH) {
    const m = await ctx.receive("lo-inbox", { timeout: input.timeoutMs });
    if (m === null) timeouts++;
    else got++;
  }
  return { got, timeouts };
});

const parked = actor("lock-order-parked", async (ctx) => {
  await ctx.subscribe("lo-parked", "direct");
  return (await ctx.receive("lo-parked", { timeout: "1h" })) === null ? "timed out" : "got one";
});

describe("lock order: timers firing vs deliveries", { skip: needsPostgres }, () => {
  const troupes: Troupe[] = [];
  const schemas: string[] = [];
  const clients: pg.Client[] = [];
  after(async () => {
    // Clients first: one still inside its transaction holds the row a FIRE waits for, and a
    // Troupe's stop() waits for that FIRE.
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await Promise.all(troupes.map((t) => t.stop().catch(() => {})));
    for (const s of schemas) await dropSchema(s);
  });

  test("FIRE takes the actor row before the timer (the order DELIVER uses)", async () => {
    const schema = freshSchema("lo");
    schemas.push(schema);
    const worker = testTroupe({ actors: [parked], schema });
    troupes.push(worker);
    await worker.start();
    const ref = await worker.spawn(parked, {}, { id: "p1" });
    await eventually(async () => (await ref.status()) === "waiting", "the actor to park");
    await worker.stop(); // nobody else fires or delivers from here on
    const t = testTroupe({ actors: [parked], schema, worker: false });
    troupes.push(t);
    await t.start();

    const x = new pg.Client({ connectionString: PG_URL });
    clients.push(x);
    await x.connect();
    const q = (text: string, params: unknown[] = []) =>
      x.query(text.replaceAll("{s}", `"${schema}"`), params);
    const { rows } = await q("UPDATE {s}.timers SET due_at = now() - interval '1 s' RETURNING seq");
    const seq = Number(rows[0]!.seq);

    // Play DELIVER's order by hand on connection x: the actor row first …
    await q("BEGIN");
    await q("SELECT 1 FROM {s}.actors WHERE id = 'p1' FOR UPDATE");
    let settled: unknown = null;
    const fired = storageOf(t)
      .timers.fire("p1", seq)
      .then(
        (v) => (settled = { ok: true as const, v }),
        (err: unknown) => (settled = { ok: false as const, err: String(err) }),
      );
    // … FIRE starts and must block (on the actor row, holding nothing of p1's) …
    await eventually(
      async () => {
        // FIRE must not finish while we hold the row (a connection error, say, ends the wait too)
        if (settled)
          throw new Error(`FIRE ended without waiting for the actor row: ${JSON.stringify(settled)}`);
        // Blocked by x itself (pg_stat_activity's query text can lag behind a prepared
        // statement's execution, and other tests share the server).
        const r = await x.query(
          "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND pg_backend_pid() = ANY(pg_blocking_pids(pid))",
        );
        return r.rows.length > 0;
      },
      "FIRE to wait for a lock",
      90_000,
    ); // a shared server under load can be slow to get there
    // … then the timer, as DELIVER does after locking the actor. Before the fix FIRE held the
    // timer row already: this waited for FIRE while FIRE waited for us — a deadlock.
    let delivered: string;
    try {
      await q("DELETE FROM {s}.timers WHERE actor_id = 'p1'");
      await q(
        "UPDATE {s}.actors SET status = 'running', wait_seq = NULL, wait_kind = NULL, wait_name = NULL WHERE id = 'p1'",
      );
      await q("COMMIT");
      delivered = "ok";
    } catch (err) {
      await q("ROLLBACK");
      delivered = String(err);
    }
    const f = await fired;
    assert.deepEqual(
      { delivered, fire: f },
      { delivered: "ok", fire: { ok: true, v: false } },
      "the delivery side must win cleanly and FIRE find nothing left to fire",
    );
  });

  test("short receive timeouts racing group broadcasts and sends never deadlock", async () => {
    const schema = freshSchema("lo");
    schemas.push(schema);
    const problems: string[] = [];
    const logger: Logger = (level, msg, fields) => {
      const text = `${msg} ${JSON.stringify(fields ?? {})}`;
      if (/deadlock|40P01/i.test(text)) problems.push(`${level}: ${text}`);
    };
    const mine: Troupe[] = [];
    for (let w = 0; w < WORKERS; w++)
      mine.push(testTroupe({ actors: [receiver], schema, logger, pollInterval: "100ms", poolSize: 6 }));
    troupes.push(...mine);
    for (const t of mine) await t.start();
    const client = mine[0]!;
    const ids = Array.from({ length: ACTORS }, (_, i) => `r${i}`);
    // 20–50 ms timeouts: every actor keeps re-arming a timer that races the next delivery.
    const refs = [];
    for (const [i, id] of ids.entries())
      refs.push(await client.spawn(receiver, { timeoutMs: 20 + (i % 4) * 10 }, { id }));
    await eventually(async () => (await client.members("lo-all")).length === ACTORS, "all to join");
    // A group broadcast makes one delivery statement lock many waiting actors while their
    // short timers come due; several senders on different workers at once.
    let rounds = 0;
    await Promise.all(
      Array.from({ length: SENDERS }, async (_, s) => {
        const sender = mine[s % WORKERS]!;
        while (rounds < MESSAGES_EACH) {
          const n = rounds++;
          await sender.broadcast("lo-all", "lo-inbox", { n });
        }
      }),
    );
    const outs = (await Promise.all(refs.map((r) => r.result({ timeout: "3m" })))) as {
      got: number;
      timeouts: number;
    }[];
    for (const o of outs) assert.equal(o.got, MESSAGES_EACH);
    assert.ok(
      outs.some((o) => o.timeouts > 0),
      "no receive timeout ever fired: the race was not exercised",
    );
    assert.deepEqual(problems, [], `deadlocks were reported:\n${problems.slice(0, 5).join("\n")}`);
  });
});
