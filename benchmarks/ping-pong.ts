/**
 * Scenario 1, ping-pong: two actors exchange direct messages (ctx.send + ctx.receive on a
 * direct channel). Round trip = ping sent → pong received, measured by the pinger (see
 * ping-pong-actors.ts). Variants:
 *   - pg+redis, 1 process:   both actors on one worker (real Postgres + Redis wakeups);
 *   - pg+redis, 2 processes: each actor type registered in its own worker process only;
 *   - pglite (memory), 1 process: the embedded default (PGlite in memory, in-process wakeups).
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Troupe } from "../src/index.js";
import { rawSqlOf } from "../src/internal/storage-access.js";
import { pinger, ponger, type PingResult } from "./ping-pong-actors.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema, withPg } from "./lib/env.js";
import type { ResultRow, Scenario, ScenarioContext, ScenarioResult } from "./lib/scenario.js";
import { wants } from "./lib/scenario.js";
import { median, round3, summarize, wallMs } from "./lib/stats.js";

const VARIANTS = ["pg+redis, 1 process", "pg+redis, 2 processes", "pglite memory, 1 process"] as const;
type Variant = (typeof VARIANTS)[number];

interface RoundOut {
  round: number;
  rtt: ReturnType<typeof summarize>;
  send: ReturnType<typeof summarize>;
  /** Wall time of the whole actor pair for this round, spawn to result, and per measured+warm-up trip. */
  wallMs: number;
  entries: number;
  warnings: string[];
}

/** Runs one round in-process: spawn ponger and pinger, wait for the pinger's timings. */
async function roundInProcess(t: Troupe, tag: string, round: number, warmup: number, n: number) {
  const pongId = `pong-${tag}-${round}`;
  await t.spawn(ponger, { n: warmup + n }, { id: pongId });
  const t0 = wallMs();
  const ref = await t.spawn(pinger, { peer: pongId, warmup, n }, { id: `ping-${tag}-${round}` });
  try {
    const res = await ref.result({ timeout: ROUND_TIMEOUT });
    return { res, wall: wallMs() - t0 };
  } catch (err) {
    throw new StuckError(String(err), await stuckState(rawSqlOf(t).db, rawSqlOf(t).schema, [ref.id, pongId]));
  }
}

/** A round that did not finish: carries the actors' rows and pending messages for the report. */
class StuckError extends Error {
  constructor(
    msg: string,
    readonly state: unknown,
  ) {
    super(msg);
  }
}

const ROUND_TIMEOUT = process.env.BENCH_ROUND_TIMEOUT ?? "3m";

async function stuckState(
  db: { query<R>(t: string, p?: unknown[]): Promise<{ rows: R[] }> },
  schema: string,
  ids: string[],
) {
  const actors = await db.query(
    `SELECT id, status, wait_seq, wait_kind, lease_owner, lease_expires_at, lease_version, sticky_worker, journal_version, updated_at
       FROM "${schema}".actors WHERE id = ANY($1)`,
    [ids],
  );
  const subs = await db.query(
    `SELECT actor_id, channel, source, cursor, wait_seq FROM "${schema}".subscriptions WHERE actor_id = ANY($1)`,
    [ids],
  );
  const pending = await db.query(
    `SELECT id, channel, claimed_by, published_at FROM "${schema}".messages
      WHERE direct_to = ANY($1) AND claimed_by IS NULL ORDER BY id`,
    [ids],
  );
  const tail = await db.query(
    `SELECT actor_id, seq, kind, name, created_at FROM "${schema}".journal
      WHERE actor_id = ANY($1) ORDER BY created_at DESC LIMIT 6`,
    [ids],
  );
  return { actors: actors.rows, subscriptions: subs.rows, pending: pending.rows, journalTail: tail.rows };
}

class Child {
  readonly proc: ChildProcess;
  readonly warnings: string[] = [];
  private waiters: ((m: any) => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(role: "ping" | "pong", schema: string) {
    this.proc = fork(fileURLToPath(new URL("./ping-pong-worker.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        BENCH_ROLE: role,
        BENCH_SCHEMA: schema,
        BENCH_DATABASE_URL: PG_URL,
        BENCH_REDIS_URL: REDIS_URL,
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.proc.on("message", (m: any) => {
      if (m.type === "log") {
        this.warnings.push(`${role}: ${m.level} ${m.msg} ${JSON.stringify(m.fields ?? {})}`);
        return;
      }
      this.waiters.shift()?.(m);
    });
    this.exited = new Promise((r) => this.proc.on("exit", (code) => r(code)));
  }

  next(): Promise<any> {
    return new Promise((resolve, reject) => {
      this.waiters.push((m) => (m.type === "error" ? reject(new Error(m.message)) : resolve(m)));
      void this.exited.then((code) => reject(new Error(`worker exited (${code})`)));
    });
  }

  async call(msg: Record<string, unknown>): Promise<any> {
    const p = this.next();
    this.proc.send(msg);
    return p;
  }
}

async function runVariant(ctx: ScenarioContext, variant: Variant, warmup: number, n: number) {
  const pglite = variant.startsWith("pglite");
  const schema = freshSchema("pingpong");
  const rounds: RoundOut[] = [];
  const problems: string[] = [];
  const stuck: unknown[] = [];
  ctx.log(`ping-pong / ${variant}: schema ${schema}, ${ctx.rounds} rounds of ${warmup} warm-up + ${n}`);
  try {
    if (variant === "pg+redis, 2 processes") {
      const pong = new Child("pong", schema);
      await pong.next(); // ready (migrates the schema)
      const ping = new Child("ping", schema);
      await ping.next();
      try {
        for (let r = 0; r < ctx.rounds; r++) {
          await pong.call({ cmd: "spawn", id: `pong-${r}`, input: { n: warmup + n } });
          const t0 = wallMs();
          await ping.call({ cmd: "spawn", id: `ping-${r}`, input: { peer: `pong-${r}`, warmup, n } });
          const got = await ping.call({ cmd: "result", id: `ping-${r}` }).catch((err: Error) => err);
          if (got instanceof Error) {
            const state = await withPg((c) =>
              stuckState({ query: (t, p) => c.query(t, p as unknown[]) as never }, schema, [
                `ping-${r}`,
                `pong-${r}`,
              ]),
            );
            const warnings = [...ping.warnings.splice(0), ...pong.warnings.splice(0)];
            problems.push(
              `round ${r} did not finish: ${got.message}; state: ${JSON.stringify(state)}; worker warnings: ${warnings.slice(-5).join(" | ")}`,
            );
            ctx.log(
              `  round ${r} STUCK: ${got.message}\n${JSON.stringify(state, null, 1)}\n${warnings.join("\n")}`,
            );
            stuck.push(state);
            break;
          }
          const { value } = got as { value: PingResult };
          rounds.push(
            toRound(r, value, wallMs() - t0, [...ping.warnings.splice(0), ...pong.warnings.splice(0)]),
          );
          ctx.log(
            `  round ${r}: p50 ${rounds.at(-1)!.rtt.p50.toFixed(2)} ms, p99 ${rounds.at(-1)!.rtt.p99.toFixed(2)} ms`,
          );
        }
      } finally {
        await Promise.allSettled([ping.call({ cmd: "stop" }), pong.call({ cmd: "stop" })]);
        await Promise.allSettled([ping.exited, pong.exited]);
      }
    } else {
      const warnings: string[] = [];
      const t = new Troupe({
        actors: [pinger, ponger],
        database: pglite ? "memory://" : PG_URL,
        ...(pglite ? {} : { redis: REDIS_URL }),
        schema,
        // BENCH_PREPARED=0: measure without named prepared statements (the option defaults to on).
        preparedStatements: process.env.BENCH_PREPARED !== "0",
        logger: (level, msg, fields) => {
          if (level === "warn" || level === "error")
            warnings.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
        },
      });
      const s0 = wallMs();
      await t.start();
      ctx.log(`  started in ${(wallMs() - s0).toFixed(0)} ms`);
      try {
        for (let r = 0; r < ctx.rounds; r++) {
          try {
            const { res, wall } = await roundInProcess(t, schema, r, warmup, n);
            rounds.push(toRound(r, res, wall, warnings.splice(0)));
          } catch (err) {
            if (!(err instanceof StuckError)) throw err;
            problems.push(`round ${r} did not finish: ${err.message}; state: ${JSON.stringify(err.state)}`);
            ctx.log(`  round ${r} STUCK: ${err.message}\n${JSON.stringify(err.state, null, 1)}`);
            stuck.push(err.state);
            break;
          }
          ctx.log(
            `  round ${r}: p50 ${rounds.at(-1)!.rtt.p50.toFixed(2)} ms, p99 ${rounds.at(-1)!.rtt.p99.toFixed(2)} ms`,
          );
        }
      } finally {
        await t.stop();
      }
    }
  } finally {
    if (!pglite && !(stuck.length && process.env.BENCH_KEEP_SCHEMA)) await dropSchema(schema);
    else if (!pglite) ctx.log(`  schema ${schema} kept for inspection`);
  }
  for (const r of rounds) {
    if (r.entries !== 1)
      problems.push(`round ${r.round}: pinger body entered ${r.entries}× (replayed): timings invalid`);
    if (r.warnings.length)
      problems.push(`round ${r.round}: ${r.warnings.length} warnings: ${r.warnings.slice(0, 3).join(" | ")}`);
  }
  const row: ResultRow = {
    system: "troupe",
    variant,
    metrics: {
      p50: median(rounds.map((r) => r.rtt.p50)),
      p99: median(rounds.map((r) => r.rtt.p99)),
      mean: median(rounds.map((r) => r.rtt.mean)),
      max: median(rounds.map((r) => r.rtt.max)),
      sendP50: median(rounds.map((r) => r.send.p50)),
      perSec: median(rounds.map((r) => 1000 / r.rtt.mean)),
    },
    rounds: stuck.length ? [...rounds, { stuck }] : rounds,
    problems,
  };
  return row;
}

function toRound(round: number, res: PingResult, wall: number, warnings: string[]): RoundOut {
  const r = (s: ReturnType<typeof summarize>) =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === "n" ? v : round3(v)])) as typeof s;
  return {
    round,
    rtt: r(summarize(res.rtt)),
    send: r(summarize(res.send)),
    wallMs: round3(wall),
    entries: res.entries,
    warnings,
  };
}

export const pingPong: Scenario = {
  name: "ping-pong",
  description: "two actors exchange direct messages; round trip ping sent → pong received (ms)",
  variants: [...VARIANTS],
  async run(ctx): Promise<ScenarioResult> {
    const warmup = ctx.quick ? 20 : 100;
    const n = ctx.quick ? 200 : 1000;
    const rows: ResultRow[] = [];
    for (const v of VARIANTS) if (wants(ctx, v)) rows.push(await runVariant(ctx, v, warmup, n));
    const c = ctx.ceilings;
    const pg = rows.find((r) => r.variant === "pg+redis, 1 process");
    // A durable hop needs at least one commit (the send) and one wakeup; a round trip is two hops.
    const floor = 2 * (c.pgInsertCommit.p50 + c.redisPublishRtt.p50);
    return {
      scenario: "ping-pong",
      description: this.description,
      config: {
        warmup,
        roundTripsPerRound: n,
        rounds: ctx.rounds,
        lease: "30s (default)",
        pollInterval: "1s (default)",
      },
      columns: [
        { key: "p50", label: "p50 ms" },
        { key: "p99", label: "p99 ms" },
        { key: "mean", label: "mean ms" },
        { key: "max", label: "max ms" },
        { key: "sendP50", label: "send() p50 ms" },
        { key: "perSec", label: "round trips/s", digits: 0 },
      ],
      rows,
      chart: { metrics: ["p50", "p99"], unit: "round trip, ms", title: "troupe ping-pong round trip" },
      ceilingRatios: {
        "pg+redis 1-process p50 ÷ single INSERT commit p50": pg
          ? pg.metrics.p50! / c.pgInsertCommit.p50
          : null,
        "pg+redis 1-process p50 ÷ redis PUBLISH rtt p50": pg ? pg.metrics.p50! / c.redisPublishRtt.p50 : null,
        "floor 2×(commit p50 + redis rtt p50) ÷ pg+redis 1-process p50 (fraction of ceiling)": pg
          ? floor / pg.metrics.p50!
          : null,
      },
      notes: [
        "round trip measured by the pinger on its own clock (performance.now) around ctx.send + ctx.receive; recorded once by a final step",
        `floor = 2 × (one INSERT commit + one Redis PUBLISH rtt) = ${floor.toFixed(3)} ms: the least a durable two-hop exchange can cost here`,
      ],
    };
  },
};
