/**
 * One opener per embedded data directory. PGlite keeps a cluster in one process's memory
 * and writes it back to the directory; a second PGlite on the same directory (another
 * process — a CLI `publish` next to a running worker — or another Troupe in this process)
 * would read a stale copy and lose one side's writes. So opening a directory takes a lock
 * file beside it, `<dir>.lock`, holding JSON: the owner's pid, hostname, process start time,
 * lock time and a random token.
 *
 * Rules (docs/operations.md, "Embedded database directory lock"):
 * - taken with O_EXCL (`wx`): of several openers exactly one creates it;
 * - held by this process (a registry per path): refused, DatabaseLockedError;
 * - held by a live pid on this host (`kill(pid, 0)` succeeds or says EPERM): refused;
 * - held by a pid on this host that no longer exists: stale, taken over;
 * - held by another host (a directory on a shared filesystem): the pid cannot be checked,
 *   so it is refused — unless the holder has not refreshed the file for FOREIGN_STALE_MS:
 *   every holder touches its lock file every REFRESH_MS, so a file that old belongs to a
 *   host that is down (or hung) and is taken over;
 * - unreadable or half-written content younger than FOREIGN_STALE_MS: refused (its writer
 *   may still be writing it); older: stale.
 * A takeover moves the stale file aside (rename), checks that what it moved is the file it
 * judged, and only then creates its own; a fresh lock moved by mistake (a racing taker) is
 * put back with link(), which never overwrites. Released (file removed, if still ours) when
 * the database closes, and at process exit.
 */
import { randomBytes } from "node:crypto";
import { linkSync, promises as fsp, readFileSync, unlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DatabaseLockedError, type DatabaseLockHolder } from "../api/errors.js";

const REFRESH_MS = 10_000;
const FOREIGN_STALE_MS = 120_000;

interface LockContent extends DatabaseLockHolder {
  token: string;
}

interface Held {
  token: string;
  holder: DatabaseLockHolder;
  timer: NodeJS.Timeout;
}

/** Locks this process holds, by lock-file path, and those it is taking now. */
const held = new Map<string, Held>();
const opening = new Set<string>();
let exitHook = false;

const PROCESS_STARTED_AT = new Date(Date.now() - process.uptime() * 1000).toISOString();

export function lockFileOf(dataDir: string): string {
  return `${dataDir}.lock`;
}

/** Takes the lock of `dataDir` (an absolute path) or throws DatabaseLockedError. Returns the release. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = lockFileOf(dataDir);
  const mine = held.get(file);
  if (mine) throw new DatabaseLockedError(dataDir, file, mine.holder, true);
  if (opening.has(file)) throw new DatabaseLockedError(dataDir, file, null, true);
  opening.add(file); // synchronously: a concurrent opener in this process is refused above
  try {
    return await acquire(dataDir, file);
  } finally {
    opening.delete(file);
  }
}

async function acquire(dataDir: string, file: string): Promise<() => Promise<void>> {
  const content: LockContent = {
    pid: process.pid,
    hostname: os.hostname(),
    processStartedAt: PROCESS_STARTED_AT,
    lockedAt: new Date().toISOString(),
    token: randomBytes(12).toString("hex"),
  };
  await fsp.mkdir(path.dirname(file), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    if (await create(file, content)) break;
    const seen = await read(file);
    if (seen === "gone") continue; // released meanwhile
    if (!isStale(seen) || attempt >= 3) throw lockedBy(dataDir, file, seen.content);
    // stale: move it aside and try again
    await takeOver(file, seen.content?.token);
  }
  // Registered before anything else can fail, so release always finds it.
  const timer = setInterval(() => {
    const now = new Date();
    fsp.utimes(file, now, now).catch(() => {});
  }, REFRESH_MS);
  timer.unref();
  const { token, ...holder } = content;
  held.set(file, { token, holder, timer });
  if (!exitHook) {
    exitHook = true;
    process.on("exit", releaseAllSync);
  }
  return async () => {
    const h = held.get(file);
    if (!h || h.token !== token) return;
    held.delete(file);
    clearInterval(h.timer);
    if ((await readToken(file)) === token) await fsp.rm(file, { force: true });
  };
}

async function create(file: string, content: LockContent): Promise<boolean> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, "wx", 0o644);
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  }
  try {
    await handle.writeFile(`${JSON.stringify(content)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

type Seen = { content: LockContent | null; ageMs: number };

async function read(file: string): Promise<Seen | "gone"> {
  try {
    const [st, text] = await Promise.all([fsp.stat(file), fsp.readFile(file, "utf8")]);
    return { content: parse(text), ageMs: Date.now() - st.mtimeMs };
  } catch (error) {
    if (errorCode(error) === "ENOENT") return "gone";
    throw error;
  }
}

function parse(text: string): LockContent | null {
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    if (!Number.isInteger(v.pid) || typeof v.hostname !== "string" || typeof v.token !== "string")
      return null;
    return v as LockContent;
  } catch {
    return null;
  }
}

function isStale(seen: Seen): boolean {
  const c = seen.content;
  if (!c || c.hostname !== os.hostname()) return seen.ageMs > FOREIGN_STALE_MS;
  // Our own pid, but not a lock this process holds or is taking (both refused before we get
  // here): a leftover of an earlier process that had the same pid (containers restart as pid 1).
  if (c.pid === process.pid) return true;
  return !pidAlive(c.pid);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) !== "ESRCH"; // EPERM: alive, another user's
  }
}

/** Moves the stale lock aside and deletes it — unless what moved is not the file judged stale. */
async function takeOver(file: string, judgedToken: string | undefined): Promise<void> {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await fsp.rename(file, aside);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return; // someone else moved it
    throw error;
  }
  const moved = parse(await fsp.readFile(aside, "utf8").catch(() => ""));
  if (moved?.token !== judgedToken) {
    // A racing taker's fresh lock: put it back (link never replaces an existing file).
    try {
      linkSync(aside, file);
    } catch {
      // a third opener created one meanwhile; the racer's lock is lost, theirs stands
    }
  }
  await fsp.rm(aside, { force: true });
}

function lockedBy(dataDir: string, file: string, c: LockContent | null): DatabaseLockedError {
  const holder = c
    ? { pid: c.pid, hostname: c.hostname, processStartedAt: c.processStartedAt, lockedAt: c.lockedAt }
    : null;
  return new DatabaseLockedError(dataDir, file, holder, false);
}

async function readToken(file: string): Promise<string | undefined> {
  return parse(await fsp.readFile(file, "utf8").catch(() => ""))?.token;
}

function releaseAllSync(): void {
  for (const [file, h] of held) {
    try {
      if (parse(readFileSync(file, "utf8"))?.token === h.token) unlinkSync(file);
    } catch {
      // already gone
    }
  }
  held.clear();
}

/** The code of a Node system error (ENOENT, EEXIST …), if it is one. */
export function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}
