/**
 * An embedded (PGlite) data directory has one opener at a time. Without the lock a CLI
 * `publish` to a directory a worker held printed "published message N", exited 0, and the
 * message was lost (the worker's copy of the cluster won). Now a second opener — another
 * process or another Troupe in this process — gets DATABASE_LOCKED naming the holder, and
 * nothing is written; a lock left by a dead process is taken over; stop() releases it.
 * Embedded only, so these run the same on either test backend.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { DatabaseLockedError, Troupe, TroupeError } from "../src/index.js";
import { eventually } from "./helpers.js";
import { runNode } from "./support/run-node.js";
import { boundSql, databaseOf } from "./support/internals.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));

const run = (args: string[]) => runNode(args);

const embedded = (dir: string) => new Troupe({ database: dir, logger: () => {} });

/** Messages on `channel` in the directory's database (opened after everyone else let go). */
async function count(dir: string, channel: string): Promise<number> {
  const t = new Troupe({ database: dir, worker: false, logger: () => {} });
  await t.start();
  try {
    const { rows } = await databaseOf(t).query<{ n: number }>(
      boundSql(t, "SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = $1"),
      [channel],
    );
    return rows[0]!.n;
  } finally {
    await t.stop();
  }
}

describe("embedded data directory lock", () => {
  const scratch: string[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    for (const d of scratch) await rm(d, { recursive: true, force: true });
  });
  async function freshDir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), "troupe-lock-"));
    scratch.push(d);
    return join(d, "db");
  }

  test("a CLI publish to a directory another process holds fails with DATABASE_LOCKED and writes nothing", async () => {
    const dir = await freshDir();
    const env = { ...process.env };
    delete env.TROUPE_DATABASE_URL;
    const holder = spawn(process.execPath, ["--import", "tsx", "test/fixtures/dir-holder.ts", dir], {
      cwd: REPO,
      env,
    });
    children.push(holder);
    let out = "";
    holder.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await eventually(
      () => out.includes("ready") || out.includes("error"),
      "the holder to open the directory",
      120_000, // a child process seeding a fresh directory on a busy machine
    );
    assert.match(out, /ready/);

    const r = await run(["src/cli.ts", "publish", "lock-test", '{"n":1}', "--database", dir]);
    assert.notEqual(r.code, 0, `the CLI exited 0: ${r.stdout}`);
    assert.equal(r.stdout, "", "nothing may claim to be published");
    assert.match(r.stderr, /DATABASE_LOCKED/);
    assert.match(r.stderr, new RegExp(`in use by process ${holder.pid} on ${hostname()}`));

    holder.stdin.end(); // graceful stop: releases the lock
    await new Promise((resolve) => holder.once("exit", resolve));
    assert.equal(holder.exitCode, 0);
    assert.equal(existsSync(`${dir}.lock`), false, "the holder's stop removed its lock");
    assert.equal(await count(dir, "lock-test"), 0);
  });

  test("a second Troupe in the same process is refused; stop() releases the directory", async () => {
    const dir = await freshDir();
    const first = embedded(dir);
    await first.start();
    const second = embedded(dir);
    const err = await second.start().then(
      () => second.stop().then(() => null),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DatabaseLockedError, `expected DatabaseLockedError, got ${String(err)}`);
    assert.ok(err instanceof TroupeError);
    assert.equal(err.code, "DATABASE_LOCKED");
    assert.match(err.message, new RegExp(`another Troupe in this process \\(pid ${process.pid}\\)`));
    await first.publish("held", 1);
    await first.stop();
    assert.equal(existsSync(`${dir}.lock`), false);
    const third = embedded(dir);
    await third.start();
    await third.stop();
    assert.equal(await count(dir, "held"), 1);
  });

  test("a lock left by a process that exited is taken over", async () => {
    const dir = await freshDir();
    const gone = await new Promise<number>((resolve, reject) => {
      const c = spawn(process.execPath, ["-e", ""]);
      c.on("error", reject);
      c.on("exit", () => resolve(c.pid!));
    });
    await writeFile(
      `${dir}.lock`,
      JSON.stringify({
        pid: gone,
        hostname: hostname(),
        processStartedAt: new Date().toISOString(),
        lockedAt: new Date().toISOString(),
        token: "dead",
      }),
    );
    const t = embedded(dir);
    await t.start();
    try {
      const lock = JSON.parse(await readFile(`${dir}.lock`, "utf8")) as { pid: number; hostname: string };
      assert.deepEqual([lock.pid, lock.hostname], [process.pid, hostname()]);
    } finally {
      await t.stop();
    }
    assert.equal(existsSync(`${dir}.lock`), false);
  });

  test("another host's lock is refused while it is refreshed, taken over once it is older than the rule", async () => {
    const dir = await freshDir();
    const lockedAt = new Date().toISOString();
    await writeFile(
      `${dir}.lock`,
      JSON.stringify({
        pid: 4242,
        hostname: "elsewhere.example",
        processStartedAt: lockedAt,
        lockedAt,
        token: "x",
      }),
    );
    const refused = embedded(dir);
    await assert.rejects(
      refused.start().finally(() => refused.stop()),
      (e: unknown) => {
        assert.ok(e instanceof DatabaseLockedError);
        assert.match(e.message, /process 4242 on elsewhere\.example/);
        return true;
      },
    );
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(`${dir}.lock`, old, old); // not refreshed for 10 minutes (the rule: 2)
    const t = embedded(dir);
    await t.start();
    await t.stop();
  });
});
