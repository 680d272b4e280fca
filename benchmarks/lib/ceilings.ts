import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { PG_URL, REDIS_URL, dropSchema, freshSchema, withPg } from "./env.js";
import { summarize, wallMs, type Summary } from "./stats.js";

/**
 * The floors troupe is built on, measured in the same run on the same services:
 *  - one Redis PUBLISH → subscriber round trip through ioredis (what a wakeup costs at best);
 *  - one single-row INSERT commit on Postgres from one client (what one durable write costs);
 *  - optionally pgbench with 8 clients doing the same insert (the machine's commit throughput).
 */
export interface Ceilings {
  redisPublishRtt: Summary;
  pgInsertCommit: Summary;
  pgbenchInsertC8Tps: number | null;
}

export async function redisPublishRtt(samples = 2000, warmup = 200): Promise<Summary> {
  const pub = new Redis(REDIS_URL);
  const sub = new Redis(REDIS_URL);
  const topic = `bench:ceiling:${process.pid}:${Date.now()}`;
  try {
    await sub.subscribe(topic);
    let pending: ((t: number) => void) | undefined;
    sub.on("messageBuffer", () => pending?.(wallMs()));
    const out: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      const got = new Promise<number>((r) => (pending = r));
      const t0 = wallMs();
      await pub.publish(topic, Buffer.from([1, i & 0xff]));
      const t1 = await got;
      if (i >= warmup) out.push(t1 - t0);
    }
    return summarize(out);
  } finally {
    sub.disconnect();
    pub.disconnect();
  }
}

export async function pgInsertCommit(
  samples = 2000,
  warmup = 200,
): Promise<{ commit: Summary; pgbenchC8Tps: number | null }> {
  const schema = freshSchema("ceiling");
  try {
    const commit = await withPg(async (c) => {
      await c.query(`CREATE SCHEMA "${schema}"`);
      await c.query(
        `CREATE TABLE "${schema}".ins (id bigserial PRIMARY KEY, v int NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
      );
      const out: number[] = [];
      for (let i = 0; i < warmup + samples; i++) {
        const t0 = wallMs();
        await c.query(`INSERT INTO "${schema}".ins (v) VALUES ($1)`, [i]);
        if (i >= warmup) out.push(wallMs() - t0);
      }
      return summarize(out);
    });
    return { commit, pgbenchC8Tps: await pgbench(schema) };
  } finally {
    await dropSchema(schema);
  }
}

/** pgbench -c 8 single-row INSERT for 5 s, if pgbench is installed; null otherwise. */
async function pgbench(schema: string): Promise<number | null> {
  const dir = await mkdtemp(join(tmpdir(), "troupe-bench-"));
  try {
    const script = join(dir, "insert.sql");
    await writeFile(script, `INSERT INTO "${schema}".ins (v) VALUES (1);\n`);
    const { stdout } = await promisify(execFile)(
      "pgbench",
      ["-n", "-c", "8", "-j", "2", "-T", "5", "-f", script, PG_URL],
      { encoding: "utf8" },
    );
    const m = /tps = ([\d.]+)/.exec(stdout);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function measureCeilings(): Promise<Ceilings> {
  const redisPublishRttMs = await redisPublishRtt();
  const { commit, pgbenchC8Tps } = await pgInsertCommit();
  return { redisPublishRtt: redisPublishRttMs, pgInsertCommit: commit, pgbenchInsertC8Tps: pgbenchC8Tps };
}
