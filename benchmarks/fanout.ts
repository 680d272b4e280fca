/**
 * Scenario 3, fan-out: one message to 1,000 subscriber actors; time from the publish call
 * to the last subscriber's processing commit, and deliveries/s. Each subscriber records its
 * receipt in a ctx.transaction (exactly once, in the journal's own transaction) inserting
 * (round, actor_id, clock_timestamp()) into a side table; the end of a round is the latest
 * clock_timestamp() (Postgres and this process share the host clock). Variants:
 *   - broadcast channel: 1,000 broadcast subscribers, troupe.publish(channel, …);
 *   - group broadcast:   1,000 group members with a direct subscription, troupe.broadcast(group, channel, …).
 * Round 0 is a warm-up; the figures are medians over the measured rounds.
 */
import pg from "pg";
import { Troupe, actor, type ActorContext } from "../src/index.js";
import { PG_URL, REDIS_URL, dropSchema, freshSchema } from "./lib/env.js";
import type { ResultRow, Scenario, ScenarioContext, ScenarioResult } from "./lib/scenario.js";
import { wants } from "./lib/scenario.js";
import { median, round3 } from "./lib/stats.js";

const FAN_CH = "bench-fan"; // broadcast mode
const FAN_DIRECT = "bench-fan-direct"; // direct mode (group broadcast)
const FAN_GROUP = "bench-fan-group";
const READY_GROUP = "bench-fan-ready";
/** A round not finished by then is reported as a failure (troupe delivers within a poll interval or two, or not at all). */
const ROUND_TIMEOUT_MS = Number(process.env.BENCH_ROUND_TIMEOUT_MS ?? 60_000);

const VARIANTS = ["broadcast channel", "group broadcast"] as const;
type Variant = (typeof VARIANTS)[number];

export interface SubInput {
  mode: "broadcast" | "group";
  rounds: number;
  table: string;
}

export const fanSubscriber = actor("bench-fan-sub", async (ctx: ActorContext, input: SubInput) => {
  const ch = input.mode === "broadcast" ? FAN_CH : FAN_DIRECT;
  await ctx.subscribe(ch, input.mode === "broadcast" ? "broadcast" : "direct");
  await ctx.join(input.mode === "broadcast" ? READY_GROUP : FAN_GROUP);
  for (let r = 0; r < input.rounds; r++) {
    const m = await ctx.receive<{ round: number }>(ch);
    await ctx.transaction("record", async (tx) => {
      await tx.query(`INSERT INTO ${input.table} (round, actor_id, at) VALUES ($1, $2, clock_timestamp())`, [
        m!.data.round,
        ctx.id,
      ]);
    });
  }
  return "done";
});

/** The side table the subscribers record their receipts in (a double delivery fails on the key). */
export const createReceiptsSql = (table: string) =>
  `CREATE TABLE ${table} (round int NOT NULL, actor_id text NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (round, actor_id))`;

/** Counts (as `n`) the subscribers waiting in a receive: a round can start when all are. */
export const waitingSubscribersSql = (schema: string) =>
  `SELECT count(*) AS n FROM "${schema}".actors WHERE actor = 'bench-fan-sub' AND status = 'waiting' AND wait_kind = 'receive'`;

/** Spawns the subscribers fan-0 … fan-(n-1), 50 at a time. */
export async function spawnFanSubscribers(t: Troupe, n: number, input: SubInput): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, k) =>
        t.spawn(fanSubscriber, input, { id: `fan-${i + k}` }),
      ),
    );
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

interface FanRound {
  round: number;
  /** publish call → last processing commit (ms). */
  totalMs: number;
  /** publish call → first / median processing (ms). */
  firstMs: number;
  medianMs: number;
  /** the publish call itself (ms). */
  publishMs: number;
  delivered: number;
  deliveriesPerSec: number;
}

async function runVariant(ctx: ScenarioContext, variant: Variant, subscribers: number) {
  const schema = freshSchema("fanout");
  const table = `"${schema}".fan_receipts`;
  const measured = ctx.rounds;
  const mode = variant === "broadcast channel" ? "broadcast" : "group";
  const warnings: string[] = [];
  const problems: string[] = [];
  const rounds: FanRound[] = [];
  let setup = { spawnMs: 0, readyMs: 0 };
  ctx.log(
    `fanout / ${variant}: schema ${schema}, ${subscribers} subscribers, 1 warm-up + ${measured} rounds`,
  );
  const t = new Troupe({
    actors: [fanSubscriber],
    database: PG_URL,
    redis: REDIS_URL,
    schema,
    // BENCH_PREPARED=0: measure without named prepared statements (the option defaults to on).
    preparedStatements: process.env.BENCH_PREPARED !== "0",
    logger: (level, msg, fields) => {
      if (level === "warn" || level === "error")
        warnings.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
    },
  });
  const side = new pg.Pool({ connectionString: PG_URL, max: 2 });
  side.on("error", () => {});
  const count = async (sql: string, params: unknown[] = []) =>
    Number((await side.query<{ n: string }>(sql, params)).rows[0]!.n);
  const allWaiting = async () => (await count(waitingSubscribersSql(schema))) === subscribers;
  try {
    await t.start();
    await side.query(createReceiptsSql(table));
    const s0 = Date.now();
    await spawnFanSubscribers(t, subscribers, { mode, rounds: measured + 1, table });
    const s1 = Date.now();
    await waitFor("all subscribers waiting", 300_000, allWaiting);
    setup = { spawnMs: s1 - s0, readyMs: Date.now() - s0 };
    ctx.log(`  ${subscribers} spawned in ${setup.spawnMs} ms, all waiting after ${setup.readyMs} ms`);

    for (let r = 0; r <= measured; r++) {
      const t0 = Date.now();
      if (mode === "broadcast") await t.publish(FAN_CH, { round: r });
      else {
        const { count: n } = await t.broadcast(FAN_GROUP, FAN_DIRECT, { round: r });
        if (n !== subscribers) problems.push(`round ${r}: group broadcast reached ${n} members`);
      }
      const publishMs = Date.now() - t0;
      try {
        await waitFor(
          `round ${r} processed`,
          ROUND_TIMEOUT_MS,
          async () =>
            (await count(`SELECT count(*) AS n FROM ${table} WHERE round = $1`, [r])) >= subscribers,
        );
      } catch (err) {
        const got = await count(`SELECT count(*) AS n FROM ${table} WHERE round = $1`, [r]);
        problems.push(`round ${r}: only ${got}/${subscribers} processed: ${String(err)}`);
        break;
      }
      const { rows } = await side.query<{ first: number; med: number; last: number; n: string }>(
        `SELECT extract(epoch FROM min(at)) * 1000 AS first,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at) * 1000) AS med,
                extract(epoch FROM max(at)) * 1000 AS last, count(*) AS n
           FROM ${table} WHERE round = $1`,
        [r],
      );
      const x = rows[0]!;
      const totalMs = Number(x.last) - t0;
      const out: FanRound = {
        round: r,
        totalMs: round3(totalMs),
        firstMs: round3(Number(x.first) - t0),
        medianMs: round3(Number(x.med) - t0),
        publishMs,
        delivered: Number(x.n),
        deliveriesPerSec: round3((Number(x.n) / totalMs) * 1000),
      };
      if (Number(x.n) !== subscribers)
        problems.push(`round ${r}: ${x.n} receipts for ${subscribers} subscribers`);
      if (r > 0) rounds.push(out);
      ctx.log(
        `  round ${r}${r === 0 ? " (warm-up)" : ""}: all ${x.n} processed after ${out.totalMs.toFixed(0)} ms (first ${out.firstMs.toFixed(0)}, median ${out.medianMs.toFixed(0)}) → ${out.deliveriesPerSec.toFixed(0)} deliveries/s`,
      );
      if (r < measured) await waitFor("all subscribers waiting again", 300_000, allWaiting);
    }
  } finally {
    await t.stop();
    await side.end();
    await dropSchema(schema);
  }
  if (warnings.length) problems.push(`${warnings.length} warnings: ${warnings.slice(0, 3).join(" | ")}`);
  const row: ResultRow = {
    system: "troupe",
    variant: `${variant}, ${subscribers} subscribers`,
    metrics: {
      totalMs: median(rounds.map((r) => r.totalMs)),
      firstMs: median(rounds.map((r) => r.firstMs)),
      medianMs: median(rounds.map((r) => r.medianMs)),
      deliveriesPerSec: median(rounds.map((r) => r.deliveriesPerSec)),
      publishMs: median(rounds.map((r) => r.publishMs)),
      readyS: setup.readyMs / 1000,
    },
    rounds: [{ setup }, ...rounds],
    problems,
  };
  return row;
}

export const fanout: Scenario = {
  name: "fanout",
  description: "one publish to 1,000 subscriber actors; publish call → last processing commit",
  variants: [...VARIANTS],
  async run(ctx): Promise<ScenarioResult> {
    const subscribers = ctx.quick ? 200 : 1000;
    const rows: ResultRow[] = [];
    for (const v of VARIANTS) if (wants(ctx, v)) rows.push(await runVariant(ctx, v, subscribers));
    const c = ctx.ceilings;
    const best = Math.max(0, ...rows.map((r) => r.metrics.deliveriesPerSec ?? 0));
    return {
      scenario: "fanout",
      description: this.description,
      config: {
        subscribers,
        measuredRounds: ctx.rounds,
        warmupRounds: 1,
        concurrency: "100 (default)",
        poolSize: "10 (default)",
        pollInterval: "1s (default)",
        processes: 1,
      },
      columns: [
        { key: "totalMs", label: "all processed ms", digits: 0 },
        { key: "firstMs", label: "first ms", digits: 1 },
        { key: "medianMs", label: "median ms", digits: 0 },
        { key: "deliveriesPerSec", label: "deliveries/s", digits: 0 },
        { key: "publishMs", label: "publish() ms", digits: 1 },
        { key: "readyS", label: "setup s", digits: 1 },
      ],
      rows,
      chart: {
        metrics: ["totalMs", "medianMs"],
        unit: "ms from publish call",
        title: "troupe fan-out to 1,000 actors",
      },
      ceilingRatios: {
        "best deliveries/s ÷ pgbench INSERT TPS (8 clients)": c.pgbenchInsertC8Tps
          ? best / c.pgbenchInsertC8Tps
          : null,
        "best deliveries/s ÷ single-client INSERT commits/s": c.pgInsertCommit.n
          ? best / (1000 / c.pgInsertCommit.mean)
          : null,
      },
      notes: [
        "end of a round = max(clock_timestamp()) written by the subscribers' ctx.transaction (just before its commit)",
        "each delivery costs troupe ≥ 3 commits: the delivery transaction, the actor's ctx.transaction, and re-registering the receive",
      ],
    };
  },
};
