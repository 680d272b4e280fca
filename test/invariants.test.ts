/**
 * Randomized invariant run (real Postgres + Redis only): 3 worker PROCESSES share a fresh
 * schema; 50 broadcast subscribers, 20 competing consumers and 50 direct mailboxes
 * consume what 5 publisher actors send (10,000 messages, randomly spread over the three:
 * weights broadcast:competing:direct = 1:20:79 by default, because each broadcast message
 * is 50 deliveries). While messages flow, one worker is killed with SIGKILL and replaced by
 * a new process, and Redis is stopped and started again. Then every delivery guarantee is
 * checked against two records: the consumers' journals (receive entries: what was
 * delivered) and a side table written by a transactional step with no unique constraint
 * (what was processed: a duplicate shows up as a second row).
 *
 * Seeded: the seed (printed) fixes the message plan and the fault schedule (not the
 * interleaving). Reproduce with
 *   INV_SEED=<seed> node --import tsx --test --test-name-pattern=10k test/invariants.test.ts
 * Knobs: INV_MESSAGES (default 10000), INV_WEIGHTS ("b,c,d", default "1,20,79").
 *
 * At the end: focused tests isolating engine bugs the run found (see their comments).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import pg from "pg";
import { decode } from "../src/codec.js";
import { actor, type ActorContext, type Message } from "../src/index.js";
import { LOCK_NS } from "../src/storage/sql.js";
import {
  BCAST,
  INBOX,
  JOBS,
  READY,
  consumerId,
  mailboxId,
  prng,
  publisherCount,
  publisherId,
  publisherPlan,
  subscriberId,
  type Kind,
  type Payload,
  type PlanConfig,
} from "./fixtures/inv-plan.js";
import {
  PG_URL,
  REDIS_URL,
  dropSchema,
  eventually,
  freshSchema,
  needsPostgres,
  testTroupe,
} from "./helpers.js";
import { boundSql, databaseOf, schemaOf } from "./support/internals.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const WORKER_SCRIPT = fileURLToPath(new URL("./fixtures/inv-worker.ts", import.meta.url));
const DRAIN_TIMEOUT_MS = 5 * 60_000;

const log = (msg: string) => console.log(`[invariants] ${msg}`);
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Line = { event: string; worker?: string } & Record<string, any>;

/** A worker child process: JSON lines out, JSON commands in (stdin), SIGKILL. */
class WorkerProc {
  readonly proc: ChildProcess;
  readonly lines: Line[] = [];
  private stderr = "";
  private readonly waiters = new Set<{ match: (l: Line) => boolean; resolve: (l: Line) => void }>();
  readonly exited: Promise<void>;
  alive = true;

  constructor(
    readonly id: string,
    env: Record<string, string>,
  ) {
    this.proc = spawn(process.execPath, ["--import", "tsx", WORKER_SCRIPT], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", () => {
        this.alive = false;
        resolve();
      });
    });
    this.proc.stdin!.on("error", () => {}); // writing to a killed worker
    createInterface({ input: this.proc.stdout! }).on("line", (text) => {
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        line = { event: "text", text };
      }
      this.lines.push(line);
      if (line.event === "log" || line.event === "fatal" || line.event === "command-failed")
        log(`${this.id}: ${text.slice(0, 400)}`);
      for (const w of [...this.waiters])
        if (w.match(line)) {
          this.waiters.delete(w);
          w.resolve(line);
        }
    });
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  waitFor(event: string, timeoutMs = 60_000): Promise<Line> {
    const seen = this.lines.find((l) => l.event === event);
    if (seen) return Promise.resolve(seen);
    return new Promise<Line>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${this.id}: ${event}${this.describe()}`));
      }, timeoutMs);
      const waiter = {
        match: (l: Line) => l.event === event || l.event === "fatal",
        resolve: (l: Line) => {
          clearTimeout(timer);
          if (l.event === "fatal") reject(new Error(`${this.id} failed: ${JSON.stringify(l)}`));
          else resolve(l);
        },
      };
      this.waiters.add(waiter);
      void this.exited.then(() => {
        if (!this.waiters.delete(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`${this.id} exited while waiting for ${event}${this.describe()}`));
      });
    });
  }

  send(cmd: Record<string, unknown>): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + "\n");
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  describe(): string {
    const tail = this.lines
      .slice(-6)
      .map((l) => JSON.stringify(l))
      .join("\n  ");
    return `\n [${this.id} stdout tail]\n  ${tail}\n [${this.id} stderr tail]\n${this.stderr.slice(-1500)}`;
  }
}

let aborted = false;

/** Polls `check` every `everyMs` until it is true; gives up at the deadline or once the test ended. */
async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs: number, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (aborted) throw new Error(`gave up waiting for ${what}: the test ended`);
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
      if ((err as { fatal?: boolean }).fatal) throw err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    await pause(everyMs);
  }
}

/** "b,c,d": relative weights of broadcast, competing and direct messages. */
function weights(text: string): Record<Kind, number> {
  const [b, c, d] = text.split(",").map(Number);
  assert.ok(
    [b, c, d].every((x) => x !== undefined && Number.isFinite(x) && x >= 0),
    "INV_WEIGHTS: b,c,d",
  );
  return { b: b!, c: c!, d: d! };
}

function redisCtl(action: "start" | "stop"): void {
  const res = spawnSync("bash", ["scripts/redis-ctl.sh", action], { cwd: REPO, encoding: "utf8" });
  if (res.status !== 0) throw new Error(`redis-ctl ${action} failed: ${res.stderr}`);
}

describe("randomized invariants under faults", { skip: needsPostgres }, () => {
  const workers: WorkerProc[] = [];
  let db: pg.Pool | undefined;
  let redisStopped = false;

  after(async () => {
    aborted = true;
    await Promise.all(workers.map((w) => w.kill()));
    // Other tests need Redis: always bring it back, whatever happened.
    if (REDIS_URL || redisStopped) {
      try {
        redisCtl("start");
      } catch (err) {
        log(`could not restart Redis: ${String(err)}`);
      }
    }
    await db?.end().catch(() => {});
  });

  test(
    "3 workers, 10k messages over broadcast/competing/direct, kill -9 + Redis outage: each delivered once, in order, none lost",
    { timeout: 9 * 60_000 },
    async () => {
      const seed = process.env.INV_SEED ? Number(process.env.INV_SEED) : Math.floor(Math.random() * 2 ** 31);
      assert.ok(Number.isSafeInteger(seed), "INV_SEED must be an integer");
      log(`seed=${seed}  (reproduce: INV_SEED=${seed} node --import tsx --test test/invariants.test.ts)`);
      const rnd = prng(seed ^ 0x5eed);
      const cfg: PlanConfig = {
        seed,
        publishers: 5,
        messages: Number(process.env.INV_MESSAGES ?? 10_000),
        subscribers: 50,
        consumers: 20,
        mailboxes: 50,
        weights: weights(process.env.INV_WEIGHTS ?? "1,20,79"),
      };

      // ---- expectations from the plan ------------------------------------------------
      const planned = new Map<string, { kind: Kind; box: number }>(); // "p/s" → target
      const perKind: Record<Kind, number> = { b: 0, c: 0, d: 0 };
      for (let p = 0; p < cfg.publishers; p++)
        publisherPlan(cfg, p).forEach((t, s) => {
          planned.set(`${p}/${s}`, t);
          perKind[t.kind]++;
        });
      const expectedProcessed = perKind.b * cfg.subscribers + perKind.c + perKind.d;
      log(
        `plan: ${cfg.messages} messages from ${cfg.publishers} publishers: ${perKind.b} broadcast (×${cfg.subscribers} subscribers), ` +
          `${perKind.c} competing (${cfg.consumers} consumers), ${perKind.d} direct (${cfg.mailboxes} mailboxes) ` +
          `→ ${expectedProcessed} deliveries`,
      );

      // Fault schedule (seeded): kill when a fraction of the messages is published, stop
      // Redis when a fraction of the deliveries is processed.
      const killAtPublished = Math.floor(cfg.messages * (0.15 + rnd() * 0.45));
      const restartDelayMs = Math.floor(rnd() * 1500);
      const redisAtProcessed = Math.floor(expectedProcessed * (0.05 + rnd() * 0.45));
      const redisDownMs = 1500 + Math.floor(rnd() * 2500);
      const victimPick = rnd();
      log(
        `faults: SIGKILL a worker at ${killAtPublished} published, restart after ${restartDelayMs}ms; ` +
          `Redis down at ${redisAtProcessed} processed for ${redisDownMs}ms`,
      );

      // ---- schema, side table, workers -----------------------------------------------
      const schema = freshSchema("inv");
      db = new pg.Pool({ connectionString: PG_URL, max: 4 });
      db.on("error", () => {});
      const q = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = []) =>
        (await db!.query<R>(text.replaceAll("{s}", `"${schema}"`), params)).rows;
      const count = async (text: string, params: unknown[] = []) =>
        Number((await q<{ n: string }>(text, params))[0]!.n);
      await q(`CREATE SCHEMA {s}`);
      await q(`CREATE TABLE {s}.inv_seen (
        actor_id text NOT NULL, msg_id bigint NOT NULL, channel text NOT NULL, pub int NOT NULL,
        seq int NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`);

      const startWorker = (id: string) => {
        const w = new WorkerProc(id, {
          INV_DATABASE_URL: PG_URL!,
          INV_REDIS_URL: REDIS_URL ?? "",
          INV_SCHEMA: schema,
          INV_WORKER_ID: id,
          INV_LEASE: "2s",
          INV_POLL: "250ms",
        });
        workers.push(w);
        return w;
      };
      const live = () => workers.filter((w) => w.alive);
      for (const id of ["w1", "w2", "w3"]) startWorker(id);
      await Promise.all(workers.map((w) => w.waitFor("ready")));
      log(`workers up: ${workers.map((w) => `${w.id}(pid ${w.pid})`).join(", ")}`);

      const reportStall = async () => {
        log(`STALL: no delivery processed for 20 s at ${done}/${expectedProcessed}; diagnostics follow`);
        for (const w of live()) w.send({ cmd: "stats" });
        const before = Date.now();
        await Promise.all(live().map((w) => w.waitFor("stats", 5000).catch(() => null)));
        for (const w of live()) {
          const st = w.lines.findLast((l) => l.event === "stats" && l.at >= before - 1000);
          log(`STALL ${w.id}: ${st ? JSON.stringify(st.worker) : "no stats answer"}`);
        }
        const dump = async (what: string, sql: string) =>
          log(`STALL ${what}: ${JSON.stringify(await q(sql).catch((e: unknown) => String(e)))}`);
        await dump(
          "waiting actors with pending messages",
          `SELECT a.id, a.wait_seq, a.wait_kind, a.sticky_worker, a.lease_owner, a.journal_version,
                  s.source, s.mode, s.cursor, s.wait_seq AS sub_wait_seq
             FROM {s}.actors a JOIN {s}.subscriptions s ON s.actor_id = a.id
            WHERE a.status = 'waiting' AND (
                  (s.mode = 'broadcast' AND EXISTS (SELECT 1 FROM {s}.messages m WHERE m.channel = s.source AND m.id > s.cursor AND m.direct_to IS NULL))
               OR (s.mode <> 'broadcast' AND EXISTS (SELECT 1 FROM {s}.messages m WHERE m.channel = s.source AND m.claimed_by IS NULL
                                                        AND (m.direct_to IS NOT NULL) = (s.mode = 'direct'))))
            ORDER BY a.id LIMIT 30`,
        );
        await dump(
          "actors by status",
          `SELECT status, lease_owner, sticky_worker, count(*) AS n FROM {s}.actors GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        );
        await dump(
          "database sessions",
          `SELECT pid, state, wait_event_type, wait_event, now() - xact_start AS xact_age, left(query, 120) AS query
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND state <> 'idle' ORDER BY xact_start LIMIT 30`,
        );
        await dump(
          "advisory locks",
          `SELECT l.pid, l.mode, l.granted, count(*) AS n FROM pg_locks l WHERE l.locktype = 'advisory'
            GROUP BY 1, 2, 3 ORDER BY 1 LIMIT 30`,
        );
      };

      const failedActors = async () => {
        const rows = await q<{ id: string; error: unknown }>(
          `SELECT id, error FROM {s}.actors WHERE status = 'failed' LIMIT 3`,
        );
        if (rows.length > 0)
          throw Object.assign(new Error(`actors failed: ${JSON.stringify(rows)}`), { fatal: true });
      };

      // ---- consumers subscribed and known ready before anything is published -------
      const totalConsumers = cfg.subscribers + cfg.consumers + cfg.mailboxes;
      workers[0]!.send({ cmd: "spawn-consumers", cfg });
      await workers[0]!.waitFor("consumers-spawned");
      await waitUntil(
        async () => {
          await failedActors();
          return (
            (await count(`SELECT count(*) AS n FROM {s}.group_members WHERE group_name = $1`, [READY])) ===
            totalConsumers
          );
        },
        `all ${totalConsumers} consumers subscribed (members of "${READY}")`,
        120_000,
      );
      assert.equal(
        await count(`SELECT count(*) AS n FROM {s}.subscriptions`),
        totalConsumers,
        "one subscription per consumer",
      );
      log(`${totalConsumers} consumers subscribed and in "${READY}"; starting publishers`);

      const t0 = Date.now();
      workers[1]!.send({ cmd: "spawn-publishers", cfg });
      await workers[1]!.waitFor("publishers-spawned");

      const published = () => count(`SELECT count(*) AS n FROM {s}.messages`);
      const processed = () => count(`SELECT count(*) AS n FROM {s}.inv_seen`);
      const timeline: string[] = [];
      const mark = (what: string) => {
        timeline.push(`+${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
        log(timeline.at(-1)!);
      };

      // ---- faults while messages flow -------------------------------------------------
      const killTask = (async () => {
        await waitUntil(
          async () => (await published()) >= killAtPublished,
          "kill threshold",
          DRAIN_TIMEOUT_MS,
          50,
        );
        // The worker running the most publishers (a crash mid-publish is the interesting
        // case); otherwise a seeded pick.
        const owners = await q<{ owner: string; n: string }>(
          `SELECT lease_owner AS owner, count(*) AS n FROM {s}.actors
            WHERE actor = 'inv-publisher' AND status = 'running' AND lease_owner IS NOT NULL
            GROUP BY lease_owner ORDER BY count(*) DESC, lease_owner`,
        );
        const candidates = live();
        const victim =
          candidates.find((w) => w.id === owners[0]?.owner) ??
          candidates[Math.floor(victimPick * candidates.length)]!;
        const holds = await count(
          `SELECT count(*) AS n FROM {s}.actors WHERE lease_owner = $1 AND status = 'running'`,
          [victim.id],
        );
        const n = await published();
        await victim.kill();
        mark(`SIGKILL ${victim.id} (pid ${victim.pid}) at ${n} published; it held ${holds} running leases`);
        await pause(restartDelayMs);
        const fresh = startWorker(`${victim.id}-r`);
        await fresh.waitFor("ready");
        mark(`restarted as ${fresh.id} (pid ${fresh.pid})`);
      })();
      const redisTask = (async () => {
        if (!REDIS_URL) return mark("no Redis configured: the Redis outage is skipped");
        await waitUntil(
          async () => (await processed()) >= redisAtProcessed,
          "Redis threshold",
          DRAIN_TIMEOUT_MS,
        );
        const n = await processed();
        redisStopped = true;
        try {
          redisCtl("stop");
          mark(`Redis stopped at ${n} processed`);
          await pause(redisDownMs);
        } finally {
          redisCtl("start");
          redisStopped = false;
        }
        mark(`Redis started again at ${await processed()} processed`);
      })();
      // Awaited after the drain; a failure before that must not go unhandled.
      killTask.catch(() => {});
      redisTask.catch(() => {});

      // ---- wait until everything is consumed --------------------------------------------
      let lastLog = 0;
      let done = 0;
      let lastDone = -1;
      let lastProgressAt = Date.now();
      let stallReported = false;
      try {
        await waitUntil(
          async () => {
            await failedActors();
            done = await processed();
            if (done !== lastDone) {
              lastDone = done;
              lastProgressAt = Date.now();
            } else if (!stallReported && Date.now() - lastProgressAt > 20_000) {
              // No progress for 20 s: record what every worker and the database look like
              // while it is stuck (the run goes on: a late recovery is worth knowing too).
              stallReported = true;
              await reportStall();
            }
            if (Date.now() - lastLog > 5000) {
              lastLog = Date.now();
              log(
                `  +${((Date.now() - t0) / 1000).toFixed(0)}s: ${await published()}/${cfg.messages} published, ` +
                  `${done}/${expectedProcessed} processed`,
              );
            }
            return done >= expectedProcessed;
          },
          `all ${expectedProcessed} deliveries processed`,
          DRAIN_TIMEOUT_MS,
        );
      } catch (err) {
        // What is stuck: actors not parked at a receive (with their lease), and who is alive.
        const stuck = await q<Record<string, unknown>>(
          `SELECT id, status, lease_owner, lease_version, lease_expires_at > now() AS lease_live,
                  sticky_worker, journal_version, updated_at FROM {s}.actors
            WHERE status NOT IN ('waiting', 'completed') ORDER BY id LIMIT 20`,
        ).catch(() => []);
        throw new Error(
          `${(err as Error).message} (${done}/${expectedProcessed} processed); schema ${schema} kept; ` +
            `alive: ${live()
              .map((w) => w.id)
              .join(",")}; not waiting: ${JSON.stringify(stuck)}${live()
              .map((w) => w.describe())
              .join("")}`,
        );
      }
      const elapsed = (Date.now() - t0) / 1000;
      await Promise.all([killTask, redisTask]);
      mark(`all ${done} deliveries processed`);
      // Anything late (a duplicate) would land now: give it a few poll intervals.
      await pause(1500);
      for (const w of live()) w.send({ cmd: "stats" });
      await Promise.all(live().map((w) => w.waitFor("stats", 5000).catch(() => null)));
      for (const w of live()) {
        const s = w.lines.findLast((l) => l.event === "stats");
        if (s) log(`${w.id} log lines: ${JSON.stringify(s.logCounts)}`);
      }
      await Promise.all(workers.map((w) => w.kill()));

      log(
        `drained in ${elapsed.toFixed(1)}s: ${(cfg.messages / elapsed).toFixed(0)} messages/s published→processed, ` +
          `${(expectedProcessed / elapsed).toFixed(0)} deliveries/s`,
      );

      // ---- the checks -------------------------------------------------------------------
      const problems: string[] = [];
      const problem = (p: string) => {
        if (problems.length < 40) problems.push(p);
        else if (problems.length === 40) problems.push("… (more)");
      };

      // Actors: publishers completed with their count, consumers all waiting, none failed.
      const actors = await q<{
        id: string;
        actor: string;
        status: string;
        output: Buffer | null;
        error: unknown;
      }>(`SELECT id, actor, status, output, error FROM {s}.actors`);
      for (const a of actors) {
        if (a.actor === "inv-publisher") {
          const p = Number(a.id.slice("inv-p-".length));
          if (a.status !== "completed")
            problem(`publisher ${a.id} is ${a.status} ${JSON.stringify(a.error)}`);
          else if (decode(a.output) !== publisherCount(cfg, p))
            problem(`publisher ${a.id} returned ${String(decode(a.output))}`);
        } else if (a.status !== "waiting")
          problem(`consumer ${a.id} is ${a.status} ${JSON.stringify(a.error)}`);
      }
      assert.equal(actors.length, totalConsumers + cfg.publishers, "every actor exists once");

      // Published messages: exactly the plan, each once, on its channel, ids in send order.
      const msgs = await q<{ id: string; channel: string; sender: string | null; data: Buffer }>(
        `SELECT m.id::text AS id, m.channel, m.sender, m.data FROM {s}.messages m ORDER BY m.id`,
      );
      const byKey = new Map<string, string>(); // "p/s" → message id
      const kindOf = new Map<string, Kind>(); // message id → kind
      const lastIdOf = new Map<number, bigint>();
      for (const m of msgs) {
        const d = decode<Payload>(m.data);
        const key = `${d.p}/${d.s}`;
        const t = planned.get(key);
        if (!t) {
          problem(`message ${m.id} ${key} was never planned`);
          continue;
        }
        if (byKey.has(key)) problem(`message ${key} published twice (ids ${byKey.get(key)} and ${m.id})`);
        byKey.set(key, m.id);
        kindOf.set(m.id, t.kind);
        const wantChannel = t.kind === "b" ? BCAST : t.kind === "c" ? JOBS : `${INBOX}:${mailboxId(t.box)}`;
        if (m.channel !== wantChannel) problem(`message ${key} is on ${m.channel}, planned ${wantChannel}`);
        if (m.sender !== publisherId(d.p)) problem(`message ${key} has sender ${m.sender}`);
        // Rows come in id order; a publisher's messages must too (it sends them one by one).
        const id = BigInt(m.id);
        if ((lastIdOf.get(d.p) ?? -1n) > id)
          problem(`publisher ${d.p}: ${key} has a lower id than an earlier one`);
        lastIdOf.set(d.p, id);
      }
      for (const key of planned.keys())
        if (!byKey.has(key)) problem(`planned message ${key} was never published`);
      const seqOf = new Map(msgs.map((m) => [m.id, decode<Payload>(m.data)]));
      const idsOfChannel = (ch: string) => msgs.filter((m) => m.channel === ch).map((m) => m.id);

      // Deliveries, from the journals (receive entries, in journal order).
      const journal = await q<{ actor_id: string; seq: number; result: Buffer | null; error: unknown }>(
        `SELECT actor_id, seq, result, error FROM {s}.journal WHERE kind = 'receive' ORDER BY actor_id, seq`,
      );
      const received = new Map<string, Message<Payload>[]>();
      for (const j of journal) {
        const m = decode<Message<Payload> | undefined>(j.result);
        if (!m) {
          problem(`${j.actor_id} receive #${j.seq} has no message (${JSON.stringify(j.error)})`);
          continue;
        }
        let list = received.get(j.actor_id);
        if (!list) received.set(j.actor_id, (list = []));
        list.push(m);
      }
      // Processing, from the side table (no unique constraint: duplicates show).
      const seen = await q<{ actor_id: string; msg_id: string; pub: number; seq: number }>(
        `SELECT actor_id, msg_id::text, pub, seq FROM {s}.inv_seen ORDER BY actor_id, msg_id`,
      );
      const processedBy = new Map<string, string[]>();
      for (const r of seen) {
        let list = processedBy.get(r.actor_id);
        if (!list) processedBy.set(r.actor_id, (list = []));
        list.push(r.msg_id);
        const d = seqOf.get(r.msg_id);
        if (!d || d.p !== r.pub || d.s !== r.seq)
          problem(
            `${r.actor_id} processed message ${r.msg_id} as ${r.pub}/${r.seq}, published as ${JSON.stringify(d)}`,
          );
      }

      /** One consumer: its deliveries are exactly `want` (in this order), each processed once. */
      const checkConsumer = (actorId: string, channel: string, want: string[] | null) => {
        const got = received.get(actorId) ?? [];
        for (const m of got) if (m.channel !== channel) problem(`${actorId} got a message on ${m.channel}`);
        const ids = got.map((m) => m.id);
        if (want) {
          if (ids.length !== want.length || ids.some((id, i) => id !== want[i])) {
            const missing = want.filter((id) => !ids.includes(id));
            const extra = ids.filter((id, i) => !want.includes(id) || ids.indexOf(id) !== i);
            problem(
              `${actorId}: received ${ids.length}, expected ${want.length}; missing ${missing.slice(0, 5).join(",")}` +
                ` extra/duplicate ${extra.slice(0, 5).join(",")}${missing.length + extra.length === 0 ? " (order differs)" : ""}`,
            );
          }
        }
        // In id order, hence in each publisher's send order.
        for (let i = 1; i < ids.length; i++)
          if (BigInt(ids[i]!) <= BigInt(ids[i - 1]!)) {
            problem(`${actorId}: message ${ids[i]} received after ${ids[i - 1]}`);
            break;
          }
        const lastSeq = new Map<number, number>();
        for (const m of got) {
          if ((lastSeq.get(m.data.p) ?? -1) >= m.data.s) {
            problem(
              `${actorId}: publisher ${m.data.p}'s #${m.data.s} arrived after #${lastSeq.get(m.data.p)}`,
            );
            break;
          }
          lastSeq.set(m.data.p, m.data.s);
        }
        // Processed exactly once each: the side table holds the same ids, no more, no fewer.
        const proc = processedBy.get(actorId) ?? [];
        const sortedIds = [...ids].sort();
        if (proc.length !== ids.length || [...proc].sort().some((id, i) => id !== sortedIds[i]))
          problem(
            `${actorId}: ${ids.length} received but ${proc.length} processed (side table differs from journal)`,
          );
        return ids;
      };

      const bcastIds = idsOfChannel(BCAST);
      assert.equal(bcastIds.length, perKind.b, "broadcast messages published");
      for (let i = 0; i < cfg.subscribers; i++) checkConsumer(subscriberId(i), BCAST, bcastIds);

      const jobIds = idsOfChannel(JOBS);
      const jobTaken = new Map<string, string[]>();
      for (let i = 0; i < cfg.consumers; i++)
        for (const id of checkConsumer(consumerId(i), JOBS, null)) {
          const by = jobTaken.get(id) ?? [];
          by.push(consumerId(i));
          jobTaken.set(id, by);
        }
      for (const id of jobIds) {
        const by = jobTaken.get(id) ?? [];
        if (by.length !== 1)
          problem(`competing message ${id} delivered ${by.length} times (${by.join(",")})`);
      }
      for (const id of jobTaken.keys())
        if (kindOf.get(id) !== "c") problem(`consumer got non-job message ${id}`);

      for (let i = 0; i < cfg.mailboxes; i++)
        checkConsumer(mailboxId(i), INBOX, idsOfChannel(`${INBOX}:${mailboxId(i)}`));

      const totalReceived = [...received.values()].reduce((n, l) => n + l.length, 0);
      if (totalReceived !== expectedProcessed)
        problem(`journals hold ${totalReceived} deliveries, expected ${expectedProcessed}`);
      if (seen.length !== expectedProcessed)
        problem(`side table holds ${seen.length} rows, expected ${expectedProcessed}`);

      const perWorker = await q<{ worker: string; n: string }>(
        `SELECT worker, count(*) AS n FROM {s}.inv_seen GROUP BY worker ORDER BY worker`,
      );
      log(`processed per worker: ${perWorker.map((r) => `${r.worker}=${r.n}`).join(" ")}`);
      log(`timeline:\n  ${timeline.join("\n  ")}`);

      if (problems.length > 0) log(`schema ${schema} kept for inspection`);
      assert.deepEqual(problems, [], `invariants violated (seed ${seed})`);
      await dropSchema(schema);
    },
  );
});

/*
 * Isolated from a stall seen in the invariant run (16 consumers stayed "running" for
 * minutes, leased by a live worker that ran nothing): when a worker's lease on an actor it
 * is still running in memory runs out (late heartbeat: event-loop stall, slow database)
 * and the SAME worker re-claims it, Worker.resumeOrReplay returns early
 * (`running.has(row.id)`), the old execution is then fenced off (LockLostError →
 * abandoned → removed from `running`), and refreshLeases keeps extending the new lease for
 * that worker although nothing runs the actor: it never finishes while the worker lives.
 */
describe("lease expiry on the worker that still runs the actor", () => {
  test("a worker re-claiming its own actor after a late heartbeat does not orphan it", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inStep = new Promise<void>((r) => (entered = r));
    const slow = actor("inv-slow-step", async (ctx: ActorContext) => {
      await ctx.step("slow", async () => {
        entered();
        await gate;
        return 1;
      });
      return "done";
    });
    const t = testTroupe({ actors: [slow], lease: "1s", pollInterval: "100ms" });
    await t.start();
    try {
      const ref = await t.spawn(slow, {}, { id: "inv-slow" });
      await inStep;
      const row = async () =>
        (
          await databaseOf(t).query<{ lease_owner: string | null; lease_version: string; status: string }>(
            boundSql(
              t,
              "SELECT status, lease_owner, lease_version::text FROM {schema}.actors WHERE id = 'inv-slow'",
            ),
          )
        ).rows[0]!;
      const v0 = Number((await row()).lease_version);
      // A late heartbeat: the lease runs out while the step still runs on this worker,
      // and this worker's own poll claims the actor again.
      await eventually(async () => {
        await databaseOf(t).query(
          boundSql(
            t,
            `UPDATE {schema}.actors SET lease_expires_at = now() - interval '1 second'
                           WHERE id = 'inv-slow' AND lease_version = $1`,
          ),
          [v0],
        );
        return Number((await row()).lease_version) > v0;
      }, "the worker re-claims its expired actor");
      assert.equal((await row()).lease_owner, t.workerId, "re-claimed by the same worker");
      release();
      const out = await ref.result({ timeout: "10s" }).catch(async (err: unknown) => {
        throw new Error(`${String(err)}; actor row now ${JSON.stringify(await row())}`);
      });
      assert.equal(out, "done");
    } finally {
      release();
      await t.stop();
    }
  });
});

/*
 * Isolated from lock waits seen in the invariant run (pg_stat_activity: the lease refresh
 * "UPDATE actors SET lease_expires_at … WHERE lease_owner = $1" waiting on row locks, and one
 * "deadlock detected" between two of them in the server log): Worker.heartbeat runs
 * refreshLeases every lease/3 with no guard against overlap, and refreshLeases updates every
 * running row of the worker without SKIP LOCKED. An actor whose row stays locked (a long
 * ctx.transaction, or a receive queued on a busy channel lock) blocks each refresh; they pile
 * up, one pool connection each, until the pool is exhausted and every other actor on that
 * worker stalls (and its leases are not refreshed).
 */
describe("heartbeat vs a long transactional step", { skip: needsPostgres }, () => {
  test("other work on the worker goes on while one actor's transaction is open", async () => {
    let entered!: () => void;
    const inTx = new Promise<void>((r) => (entered = r));
    let longOpen = true;
    const long = actor("inv-long-tx", async (ctx: ActorContext) => {
      await ctx.transaction("long", async (tx) => {
        entered();
        await tx.query("SELECT pg_sleep(6)");
      });
      longOpen = false;
      return "long done";
    });
    const quick = actor("inv-quick", async (ctx: ActorContext) => {
      for (let i = 0; i < 5; i++) await ctx.step(`s${i}`, () => i);
      return "quick done";
    });
    const t = testTroupe({ actors: [long, quick], lease: "1s", poolSize: 4 });
    const probe = new pg.Pool({ connectionString: PG_URL, max: 1 });
    await t.start();
    try {
      const longRef = await t.spawn(long, {}, { id: "inv-long" });
      await inTx;
      // Give the heartbeat time to run a few times while the long transaction holds its row.
      const blockedRefreshes = async () =>
        Number(
          (
            await probe.query<{ n: string }>(
              `SELECT count(*) AS n FROM pg_stat_activity
                WHERE wait_event_type = 'Lock' AND query LIKE '%SET lease_expires_at%' AND query LIKE $1`,
              [`%"${schemaOf(t)}".actors%`],
            )
          ).rows[0]!.n,
        );
      const until = Date.now() + 2500;
      let seen = 0;
      while (Date.now() < until && seen < 3) {
        seen = Math.max(seen, await blockedRefreshes());
        await pause(100);
      }
      const quickRef = await t.spawn(quick, {}, { id: "inv-quick" });
      assert.equal(await quickRef.result({ timeout: "20s" }), "quick done");
      assert.ok(
        longOpen,
        `the quick actor finished only after the long transaction ended (${seen} lease refreshes were queued on its row lock at once)`,
      );
      assert.equal(await longRef.result({ timeout: "20s" }), "long done");
    } finally {
      await t.stop();
      await probe.end();
    }
  });
});

/*
 * The same pile-up with the row lock taken by troupe itself: a receive on a busy channel
 * holds the actor's row (its fence) while it queues for the channel's exclusive advisory
 * lock. Each heartbeat's refreshLeases then waits on that row; with no guard against
 * overlapping heartbeats they pile up, one pool connection each (the overlapping refreshes
 * also deadlocked each other and fenced writes in the invariant runs: "deadlock detected").
 * Here the channel is kept busy by holding its advisory lock from outside.
 */
describe("heartbeat vs a receive queued on a busy channel", { skip: needsPostgres }, () => {
  test(
    "other work on the worker goes on while one actor waits for a channel lock",
    { timeout: 120_000 },
    async () => {
      const rx = actor("inv-rx", async (ctx: ActorContext) => {
        await ctx.subscribe("inv-go", "direct");
        await ctx.subscribe("inv-busy", "competing");
        await ctx.join("inv-rx-ready");
        await ctx.receive("inv-go");
        await ctx.receive("inv-busy", { timeout: "30s" });
        return "rx done";
      });
      const quick = actor("inv-quick-2", async (ctx: ActorContext) => {
        for (let i = 0; i < 5; i++) await ctx.step(`s${i}`, () => i);
        return "quick done";
      });
      const t = testTroupe({ actors: [rx, quick], lease: "1s", poolSize: 4 });
      const probe = new pg.Pool({ connectionString: PG_URL, max: 2 });
      const holder = await probe.connect();
      let locked = false;
      await t.start();
      try {
        const rxRef = await t.spawn(rx, {}, { id: "inv-rx" });
        await eventually(async () => (await t.members("inv-rx-ready")).length === 1, "rx subscribed");
        await holder.query("SELECT pg_advisory_lock($1, hashtext('inv-busy'))", [LOCK_NS.channel]);
        locked = true;
        await t.send("inv-rx", "inv-go", 1);
        // rx's receive is now inside its transaction (holding rx's row), queued on the lock.
        const queuedOnChannel = async () =>
          Number(
            (
              await probe.query<{ n: string }>(
                `SELECT count(*) AS n FROM pg_locks
                WHERE locktype = 'advisory' AND NOT granted AND classid = $1::bigint::oid
                  AND objid = (hashtext('inv-busy')::bigint & 4294967295)::oid AND objsubid = 2`,
                [LOCK_NS.channel],
              )
            ).rows[0]!.n,
          );
        await eventually(async () => (await queuedOnChannel()) > 0, "rx queued on the channel lock");
        const queuedRefreshes = async () =>
          Number(
            (
              await probe.query<{ n: string }>(
                `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
                [`%"${schemaOf(t)}".actors SET lease_expires_at%`],
              )
            ).rows[0]!.n,
          );
        const until = Date.now() + 2500;
        let seen = 0;
        while (Date.now() < until && seen < 3) {
          seen = Math.max(seen, await queuedRefreshes());
          await pause(100);
        }
        // Not awaited before the race: with the bug even spawn() waits for a pool connection.
        const quickDone = t.spawn(quick, {}, { id: "inv-quick-2" }).then((r) => r.result({ timeout: "30s" }));
        const first = await Promise.race([quickDone, pause(6000).then(() => "still blocked after 6s")]);
        await holder.query("SELECT pg_advisory_unlock($1, hashtext('inv-busy'))", [LOCK_NS.channel]);
        locked = false;
        await quickDone;
        await t.publish("inv-busy", 1);
        assert.equal(
          first,
          "quick done",
          `the quick actor was blocked while rx waited for the channel lock (${seen} lease refreshes queued at once)`,
        );
        assert.equal(await rxRef.result({ timeout: "20s" }), "rx done");
      } finally {
        if (locked) await holder.query("SELECT pg_advisory_unlock_all()").catch(() => {});
        holder.release();
        await t.stop();
        await probe.end();
      }
    },
  );
});

/*
 * Isolated from invariant run seed 423714161: publisher inv-p-0 FAILED with "deadlock
 * detected" (40P01) raised by its fenced publish statement (the deadlock partners in the
 * server log were two overlapping lease refreshes of one worker, see above). A transient
 * database error in a journaled effect (publish, send, subscribe, join, receive …) reaches
 * the actor code as a plain pg error and fails the actor for good, although the statement
 * is atomic with its journal entry and could simply be retried (or the execution abandoned
 * and replayed). Here the server answers the publish once with a deadlock error.
 */
describe("transient database errors inside journaled effects", { skip: needsPostgres }, () => {
  test("a deadlock-victim publish is retried (or replayed), not turned into a failed actor", async () => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 5 });
    let injected = 0;
    type Query = string | { text: string };
    const realQuery = pool.query.bind(pool) as (q: Query, params?: unknown[]) => Promise<unknown>;
    (pool as unknown as { query: typeof realQuery }).query = (q, params) => {
      // troupe sends its statements as named prepared statements ({ name, text, values }).
      const text = typeof q === "string" ? q : q.text;
      if (injected === 0 && text.includes("origin_actor") && text.includes("ins AS")) {
        injected++;
        return realQuery(
          "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$",
        );
      }
      return realQuery(q, params);
    };
    const once = actor("inv-publish-once", async (ctx: ActorContext) => {
      await ctx.publish("inv-transient", { n: 1 });
      return "published";
    });
    const t = testTroupe({ actors: [once], database: pool });
    await t.start();
    try {
      const ref = await t.spawn(once, {}, { id: "inv-publish-once" });
      const out = await ref.result({ timeout: "20s" }).catch((err: unknown) => `failed: ${String(err)}`);
      assert.equal(injected, 1, "the deadlock error was injected into the publish");
      assert.equal(out, "published");
      const { rows } = await databaseOf(t).query<{ n: number }>(
        boundSql(t, "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'inv-transient'"),
      );
      assert.equal(Number(rows[0]!.n), 1, "published exactly once");
    } finally {
      await t.stop();
      await pool.end();
    }
  });
});
