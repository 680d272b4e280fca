/**
 * Private PostgreSQL and Redis servers on spare ports, for fault tests and the chaos
 * campaign: restarting, stopping or terminating them disturbs nothing else on the machine.
 * Built from the Debian packages that scripts/start-services.sh installs.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** A TCP port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function pgBin(name: string): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(a) - Number(b)) : [];
  const v = versions.at(-1);
  if (!v) throw new Error("no PostgreSQL under /usr/lib/postgresql: run scripts/start-services.sh");
  return join(root, v, "bin", name);
}

const asRoot = process.getuid?.() === 0;

/** initdb and postgres refuse to run as root: run them as the postgres user then. */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ["runuser", ["-u", "postgres", "--", pgBin(bin), ...args]] : [pgBin(bin), args];
}

function run(bin: string, args: string[]): void {
  const [cmd, argv] = pgCommand(bin, args);
  const res = spawnSync(cmd, argv, { encoding: "utf8", timeout: 120_000 });
  if (res.status !== 0) {
    throw new Error(`${bin} ${args.join(" ")} failed (${res.status}): ${res.stderr || res.stdout}`);
  }
}

export type PgStopMode = "smart" | "fast" | "immediate";

export interface PrivatePostgres {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  start(): Promise<void>;
  stop(mode?: PgStopMode): void;
  restart(mode?: PgStopMode): Promise<void>;
  /** Runs SQL as the superuser (e.g. pg_terminate_backend); returns the rows. */
  admin<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Ends every backend of the troupe user (other than the admin's own). Returns how many. */
  terminateBackends(where?: string): Promise<number>;
  /** Stops the server and removes its directory. */
  close(): void;
}

/**
 * initdb in a temporary directory, then start on a spare port. Defaults are kept
 * (fsync and synchronous_commit on): the faults must meet a server as durable as production.
 */
export async function startPrivatePostgres(opts: { maxConnections?: number } = {}): Promise<PrivatePostgres> {
  const base = mkdtempSync(join(tmpdir(), "troupe-pg-"));
  const dataDir = join(base, "data");
  const sockDir = join(base, "sock");
  if (asRoot) {
    chmodSync(base, 0o700);
    const pw = execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim();
    const gr = execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim();
    chownSync(base, Number(pw), Number(gr));
  }
  run("initdb", ["-D", dataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
  const [mk, mkArgs] = asRoot
    ? ["runuser", ["-u", "postgres", "--", "mkdir", "-p", sockDir]]
    : ["mkdir", ["-p", sockDir]];
  execFileSync(mk, mkArgs);
  const port = await freePort();
  const logFile = join(base, "postgres.log");
  const settings = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${sockDir}`,
    `-c max_connections=${opts.maxConnections ?? 200}`,
  ].join(" ");
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;

  const start = async (): Promise<void> => {
    run("pg_ctl", ["-D", dataDir, "-l", logFile, "-o", settings, "-w", "-t", "60", "start"]);
    // -w waits for "ready", but a crash-recovery start may still refuse a moment longer.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const c = new pg.Client({ connectionString: url });
      c.on("error", () => {});
      try {
        await c.connect();
        await c.end();
        return;
      } catch (err) {
        await c.end().catch(() => {});
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = (mode: PgStopMode = "fast"): void => {
    run("pg_ctl", ["-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
  };
  const admin = async <R>(sql: string, params?: unknown[]): Promise<R[]> => {
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => {});
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as R[];
    } finally {
      await c.end().catch(() => {});
    }
  };
  await start();
  return {
    url,
    port,
    dataDir,
    start,
    stop,
    restart: async (mode: PgStopMode = "fast") => {
      stop(mode);
      await start();
    },
    admin,
    terminateBackends: async (where = "true") => {
      const rows = await admin<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND (${where})`,
      );
      return rows[0]?.n ?? 0;
    },
    close: () => {
      try {
        stop("immediate");
      } catch {
        // already stopped
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
}

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  start(): Promise<void>;
  /** SIGKILL-free shutdown without saving (the data is hints only). */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** A redis-server on a spare port, in the foreground of a child process we own. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ReturnType<typeof spawn> | undefined;
  const ping = (): boolean =>
    spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "ping"], {
      encoding: "utf8",
      timeout: 1000,
    }).stdout?.includes("PONG") ?? false;
  const start = async (): Promise<void> => {
    child = spawn(
      "redis-server",
      ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--dir", tmpdir()],
      { stdio: "ignore" },
    );
    const deadline = Date.now() + 10_000;
    while (!ping()) {
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer PING`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return { url, port, start, stop, close: stop };
}
