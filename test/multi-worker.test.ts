/**
 * Several worker PROCESSES sharing one real Postgres (and Redis): a worker killed with
 * SIGKILL mid-flight loses nothing, its actors are resumed elsewhere after lease expiry,
 * transactional effects happen exactly once and no actor ever runs on two workers at once.
 * Needs TROUPE_TEST_DATABASE_URL (PGlite is a single connection: it cannot host several processes).
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import pg from "pg";
import { decode } from "../src/codec.js";
import type { StepMark } from "./fixtures/mw-worker.js";
import { PG_URL, REDIS_URL, dropSchema, eventually, needsPostgres } from "./helpers.js";
import { EFFECTS_TABLE, SideSchemas } from "./support/side-schema.js";
import { WorkerProcesses, type WorkerProcess } from "./support/worker-processes.js";

/** eventually(), typed for checks that return null (or false) until the condition holds. */
const until = <T>(check: () => Promise<T | null | false>, what: string, timeoutMs?: number) =>
  eventually(check, what, timeoutMs) as Promise<T>;

const ACTORS = 500;

interface Interval {
  token: string;
  actorId: string;
  step: string;
  worker: string;
  start: number;
  end: number;
  inTx: boolean;
}

interface Committed extends Interval {
  seq: number;
}

describe("multiple worker processes", { skip: needsPostgres }, () => {
  const children = new WorkerProcesses();
  const sides = new SideSchemas();

  after(async () => {
    await children.killAll();
    await sides.close();
  });

  /** A fresh schema with the side tables the fixture writes (troupe's own tables come from migration). */
  const setup = () =>
    sides.create("mw", [
      EFFECTS_TABLE,
      `intervals (
      token uuid PRIMARY KEY, actor_id text NOT NULL, step text NOT NULL, worker text NOT NULL,
      started_at timestamptz NOT NULL, ended_at timestamptz, in_tx boolean NOT NULL)`,
    ]);

  function startWorker(schema: string, id: string, env: Record<string, string> = {}): WorkerProcess {
    return children.start(id, "./mw-worker.ts", {
      MW_DATABASE_URL: PG_URL,
      MW_REDIS_URL: REDIS_URL ?? "",
      MW_SCHEMA: schema,
      MW_WORKER_ID: id,
      ...env,
    });
  }

  async function counts(db: pg.Pool, schema: string): Promise<Record<string, number>> {
    const { rows } = await db.query<{ status: string; n: string }>(
      `SELECT status, count(*) AS n FROM "${schema}".actors GROUP BY status`,
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  /** Waits for `ok(counts)`, failing at once (with the recorded error) if any actor failed. */
  async function waitCounts(
    db: pg.Pool,
    schema: string,
    ok: (c: Record<string, number>) => boolean,
    what: string,
    timeoutMs: number,
    procs: WorkerProcess[],
  ): Promise<Record<string, number>> {
    let last: Record<string, number> = {};
    try {
      return await until(
        async () => {
          last = await counts(db, schema);
          if ((last.failed ?? 0) > 0) {
            const { rows } = await db.query(
              `SELECT id, error FROM "${schema}".actors WHERE status = 'failed' LIMIT 3`,
            );
            throw new Error(`actors failed: ${JSON.stringify(rows)}`);
          }
          return ok(last) ? last : null;
        },
        what,
        timeoutMs,
      );
    } catch (err) {
      throw new Error(
        `${(err as Error).message}; counts ${JSON.stringify(last)}${procs.map((c) => c.describe()).join("")}`,
      );
    }
  }

  test(
    "500 actors on 3 workers, one killed with SIGKILL and restarted: all complete, effects once, never on two workers at once",
    { timeout: 180_000 },
    async () => {
      const { schema, db } = await setup();

      // Three workers; w1 also spawns the actors once all three are registered.
      const workers = new Map<string, WorkerProcess>();
      for (const id of ["w1", "w2", "w3"]) {
        const env: Record<string, string> =
          id === "w1" ? { MW_SPAWN: String(ACTORS), MW_SPAWN_AFTER: "3" } : {};
        workers.set(id, startWorker(schema, id, env));
      }
      await workers.get("w1")!.waitFor((l) => l.event === "spawned", "spawning all actors", 60_000);
      const procs = () => [...workers.values()];
      await waitCounts(
        db,
        schema,
        (c) => (c.completed ?? 0) >= 100,
        ">= 100 actors completed",
        60_000,
        procs(),
      );

      // The victim: the leader (so leadership must move too), killed while it holds leases, some of
      // them on actors it already journaled work for (step results are JSON: tag byte 1, then the text).
      const victim = await until(async () => {
        const { rows } = await db.query<{ owner: string; n: string; mine: string }>(
          `SELECT l.owner,
                  (SELECT count(*) FROM "${schema}".actors a
                    WHERE a.lease_owner = l.owner AND a.status = 'running') AS n,
                  (SELECT count(*) FROM "${schema}".actors a
                    WHERE a.lease_owner = l.owner AND a.status = 'running' AND EXISTS (
                      SELECT 1 FROM "${schema}".journal j
                       WHERE j.actor_id = a.id AND j.kind IN ('step', 'tx') AND get_byte(j.result, 0) = 1
                         AND convert_from(substring(j.result FROM 2), 'UTF8')::jsonb->>'worker' = l.owner)) AS mine
             FROM "${schema}".system_locks l WHERE l.name = 'leader'`,
        );
        const r = rows[0];
        return r && workers.has(r.owner) && Number(r.n) >= 10 && Number(r.mine) >= 3 ? r.owner : null;
      }, "the leader holding running leases on actors it journaled work for");
      const victimProc = workers.get(victim)!;
      await victimProc.kill();
      const { rows: held } = await db.query<{ id: string; lease_version: string }>(
        `SELECT id, lease_version FROM "${schema}".actors WHERE lease_owner = $1 AND status = 'running'`,
        [victim],
      );
      assert.ok(held.length > 0, "the killed worker held leases on running actors");
      const heldVersion = new Map(held.map((r) => [r.id, Number(r.lease_version)]));
      const countsAtKill = await counts(db, schema);

      // Restart it as a new process (a new worker id: its predecessor is dead, not renamed).
      const restartedId = `${victim}-restarted`;
      workers.set(restartedId, startWorker(schema, restartedId));

      const final = await waitCounts(
        db,
        schema,
        (c) => (c.completed ?? 0) === ACTORS,
        `all ${ACTORS} actors completed`,
        150_000,
        procs(),
      );
      assert.deepEqual(final, { completed: ACTORS }, "every actor completed, none failed or stuck");

      // Transactional effect: exactly once per actor.
      const { rows: effects } = await db.query<{ actor_id: string; n: string }>(
        `SELECT actor_id, count(*) AS n FROM "${schema}".effects GROUP BY actor_id`,
      );
      assert.equal(effects.length, ACTORS, "every actor's effect committed");
      const doubled = effects.filter((r) => Number(r.n) !== 1);
      assert.deepEqual(doubled, [], "no transactional step committed twice");

      // Committed work, per the journal: each step's result names the attempt (token) that committed.
      const { rows: intervalRows } = await db.query<{
        token: string;
        actor_id: string;
        step: string;
        worker: string;
        s: string;
        e: string | null;
        in_tx: boolean;
      }>(
        `SELECT token, actor_id, step, worker, in_tx,
                (extract(epoch FROM started_at) * 1000)::float8 AS s,
                (extract(epoch FROM ended_at) * 1000)::float8 AS e
           FROM "${schema}".intervals`,
      );
      const intervals = new Map<string, Interval>(
        intervalRows.map((r) => [
          r.token,
          {
            token: r.token,
            actorId: r.actor_id,
            step: r.step,
            worker: r.worker,
            start: Number(r.s),
            end: r.e === null ? Infinity : Number(r.e),
            inTx: r.in_tx,
          },
        ]),
      );
      const { rows: journal } = await db.query<{
        actor_id: string;
        seq: number;
        kind: string;
        name: string;
        result: Buffer | null;
      }>(`SELECT actor_id, seq, kind, name, result FROM "${schema}".journal ORDER BY actor_id, seq`);
      const perActor = new Map<string, Committed[]>();
      const entriesPerActor = new Map<string, string[]>();
      for (const j of journal) {
        const list = entriesPerActor.get(j.actor_id) ?? [];
        list.push(`${j.seq}:${j.kind}:${j.name}`);
        entriesPerActor.set(j.actor_id, list);
        if (j.kind !== "step" && j.kind !== "tx") continue;
        const mark = decode<StepMark>(j.result);
        const iv = intervals.get(mark.token);
        assert.ok(iv, `journaled ${j.actor_id}#${j.seq} ${j.name} has its interval row`);
        assert.equal(iv.actorId, j.actor_id);
        assert.equal(iv.step, j.name);
        assert.equal(iv.worker, mark.worker);
        assert.ok(Number.isFinite(iv.end), `journaled ${j.actor_id}#${j.seq} ${j.name} recorded its end`);
        const committed = perActor.get(j.actor_id) ?? [];
        committed.push({ ...iv, seq: j.seq });
        perActor.set(j.actor_id, committed);
      }
      assert.equal(entriesPerActor.size, ACTORS);
      for (const [id, entries] of entriesPerActor)
        assert.deepEqual(
          entries,
          ["0:step:one", "1:sleep:", "2:tx:effect", "3:step:three"],
          `journal of ${id}`,
        );

      // Transactional intervals exist only when committed with their journal entry.
      const committedTokens = new Set([...perActor.values()].flat().map((c) => c.token));
      const orphanTx = [...intervals.values()].filter((iv) => iv.inTx && !committedTokens.has(iv.token));
      assert.deepEqual(orphanTx, [], "no transactional step committed without its journal entry");

      // Never on two workers at once: committed intervals of one actor by different workers never overlap.
      const overlaps: string[] = [];
      for (const [id, list] of perActor) {
        for (let i = 0; i < list.length; i++)
          for (let k = i + 1; k < list.length; k++) {
            const a = list[i]!;
            const b = list[k]!;
            if (a.worker !== b.worker && a.start < b.end && b.start < a.end)
              overlaps.push(
                `${id}: ${a.step}@${a.worker} [${a.start}, ${a.end}] vs ${b.step}@${b.worker} [${b.start}, ${b.end}]`,
              );
          }
      }
      assert.deepEqual(overlaps, [], "an actor ran on two workers at the same time");

      // The outputs agree with the journal.
      const { rows: outputs } = await db.query<{ id: string; output: Buffer; lease_version: string }>(
        `SELECT id, output, lease_version FROM "${schema}".actors`,
      );
      for (const r of outputs) {
        const out = decode<{ n: number; workers: string[] }>(r.output);
        const committed = perActor.get(r.id)!;
        assert.deepEqual(
          out.workers,
          committed.map((c) => c.worker),
          `output of ${r.id}`,
        );
        assert.equal(`mw-${out.n}`, r.id);
      }

      // The killed worker's actors were taken over: each was claimed again (lease version moved on),
      // and some show committed work by the killed worker and by another worker.
      const finalVersion = new Map(outputs.map((r) => [r.id, Number(r.lease_version)]));
      for (const [id, v] of heldVersion)
        assert.ok(finalVersion.get(id)! > v, `${id}, leased by ${victim} when killed, was claimed again`);
      const mixed = [...heldVersion.keys()].filter((id) => {
        const ws = new Set(perActor.get(id)!.map((c) => c.worker));
        return ws.has(victim) && ws.size > 1;
      });
      assert.ok(
        mixed.length > 0,
        `some actor held by ${victim} shows committed work by ${victim} and by another worker`,
      );
      const uncommittedByVictim = [...intervals.values()].filter(
        (iv) => iv.worker === victim && !committedTokens.has(iv.token),
      ).length;
      const byWorker: Record<string, number> = {};
      for (const c of [...perActor.values()].flat()) byWorker[c.worker] = (byWorker[c.worker] ?? 0) + 1;
      console.log(
        `# killed ${victim} at ${JSON.stringify(countsAtKill)} holding ${held.length} leases; ` +
          `${mixed.length} of them show two workers; ${uncommittedByVictim} step attempts of ${victim} never committed; ` +
          `committed steps by worker ${JSON.stringify(byWorker)}`,
      );

      await Promise.all(procs().map((c) => c.kill()));
      await dropSchema(schema);
    },
  );

  test(
    "a worker restarted under the same id (after SIGKILL) lets its predecessor's actors be resumed",
    { timeout: 120_000 },
    async () => {
      const total = 40;
      const { schema, db } = await setup();
      // A lease long enough that the restarted process is up (and heart-beating) before the
      // predecessor's leases would have expired on their own.
      const lease = { MW_LEASE: "8s" };
      const first = startWorker(schema, "solo", { ...lease, MW_SPAWN: String(total) });
      await first.waitFor((l) => l.event === "spawned", "spawning the actors");
      await eventually(async () => {
        const { rows } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM "${schema}".actors WHERE lease_owner = 'solo' AND status = 'running'`,
        );
        return Number(rows[0]?.n) >= 3;
      }, "solo holding running leases");
      await first.kill();
      const { rows: held } = await db.query<{ id: string }>(
        `SELECT id FROM "${schema}".actors WHERE lease_owner = 'solo' AND status = 'running'`,
      );
      assert.ok(held.length > 0);

      const second = startWorker(schema, "solo", lease); // same configured id, new process
      try {
        await waitCounts(
          db,
          schema,
          (c) => (c.completed ?? 0) === total,
          `all ${total} actors completed`,
          60_000,
          [second],
        );
      } catch (err) {
        const { rows } = await db.query<{ id: string; lease_version: string }>(
          `SELECT id, lease_version FROM "${schema}".actors
            WHERE status = 'running' AND lease_owner = 'solo' AND lease_expires_at > now()
              AND id = ANY($1) ORDER BY id`,
          [held.map((h) => h.id)],
        );
        if (rows.length === 0) throw err;
        throw new Error(
          `${rows.length} of the ${held.length} actors leased by the killed "solo" still carry that lease, ` +
            `unexpired, long after the kill: ${JSON.stringify(rows.slice(0, 5))}. The restarted "solo" ` +
            `refreshes every lease whose lease_owner is its id, including its predecessor's, so they never ` +
            `expire and nobody resumes them.\n${(err as Error).message}`,
        );
      }
      const { rows: effects } = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".effects GROUP BY actor_id HAVING count(*) <> 1`,
      );
      assert.deepEqual(effects, [], "no transactional step committed twice");

      await Promise.all([first.kill(), second.kill()]);
      await dropSchema(schema);
    },
  );

  test(
    "no worker runs more actors at once than its concurrency, even when wakeups arrive in bursts",
    { timeout: 120_000 },
    async () => {
      // Spawning (and timers firing) publish one wakeup per actor; every worker tries to claim each.
      const total = 200;
      const concurrency = 5;
      const { schema, db } = await setup();
      const env = { MW_CONCURRENCY: String(concurrency) };
      const procs = [
        startWorker(schema, "c1", { ...env, MW_SPAWN: String(total), MW_SPAWN_AFTER: "2" }),
        startWorker(schema, "c2", env),
      ];
      await Promise.all(procs.map((p) => p.waitFor((l) => l.event === "ready", "ready")));
      const peak: Record<string, number> = {};
      const deadline = Date.now() + 90_000;
      for (;;) {
        const { rows } = await db.query<{ owner: string; n: string }>(
          `SELECT lease_owner AS owner, count(*) AS n FROM "${schema}".actors
          WHERE status = 'running' AND lease_owner IS NOT NULL GROUP BY lease_owner`,
        );
        for (const r of rows) peak[r.owner] = Math.max(peak[r.owner] ?? 0, Number(r.n));
        const c = await counts(db, schema);
        if (c.completed === total) break;
        if (Date.now() > deadline)
          throw new Error(`timed out; counts ${JSON.stringify(c)}${procs.map((p) => p.describe()).join("")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      console.log(`# peak running leases per worker (concurrency ${concurrency}): ${JSON.stringify(peak)}`);
      // Slack: a slot is freed just before the finishing write commits, so a worker may briefly
      // hold one finishing lease per slot on top of its running ones: never more than 2 × concurrency.
      for (const [owner, n] of Object.entries(peak))
        assert.ok(
          n <= 2 * concurrency,
          `worker ${owner} (concurrency ${concurrency}) held ${n} running leases at once; peaks ${JSON.stringify(peak)}`,
        );
      await Promise.all(procs.map((p) => p.kill()));
      await dropSchema(schema);
    },
  );
});
