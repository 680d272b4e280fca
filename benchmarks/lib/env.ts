import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import os from "node:os";
import pg from "pg";
import { Redis } from "ioredis";

/** The real services benchmarks run against (override with BENCH_DATABASE_URL / BENCH_REDIS_URL). */
export const PG_URL = process.env.BENCH_DATABASE_URL ?? "postgres://troupe:troupe@127.0.0.1:5432/troupe";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A fresh schema name for one run of one scenario variant. */
export function freshSchema(prefix: string): string {
  return `bench_${prefix.replace(/[^a-z0-9_]/g, "_")}_${randomBytes(4).toString("hex")}`;
}

export async function withPg<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

export interface MachineInfo {
  date: string;
  host: string;
  platform: string;
  cpus: number;
  cpuModel: string;
  totalMemGiB: number;
  loadavgAtStart: number[];
  node: string;
  postgres: string;
  postgresSettings: Record<string, string>;
  redis: string;
  troupeCommit: string;
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "?";
  }
}

export async function machineInfo(): Promise<MachineInfo> {
  const { version, settings } = await withPg(async (c) => {
    const v = await c.query<{ v: string }>("SELECT version() AS v");
    const s = await c.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings
        WHERE name IN ('synchronous_commit','fsync','shared_buffers','max_connections','wal_level','full_page_writes')`,
    );
    return { version: v.rows[0]!.v, settings: Object.fromEntries(s.rows.map((r) => [r.name, r.setting])) };
  });
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let redis = "?";
  try {
    await r.connect();
    const info = await r.info("server");
    redis = /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
  } finally {
    r.disconnect();
  }
  const cpus = os.cpus();
  const dirty = git(["status", "--porcelain", "--", "src", "migrations"]) !== "";
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "?",
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    postgres: version,
    postgresSettings: settings,
    redis,
    troupeCommit: `${git(["rev-parse", "--short", "HEAD"])}${dirty ? "+dirty(src)" : ""}`,
  };
}
