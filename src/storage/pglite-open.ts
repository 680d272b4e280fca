/**
 * Fast start for embedded Postgres (PGlite).
 *
 * A fresh PGlite cluster runs initdb, ~3 s. Instead we run initdb once per
 * machine (per PGlite version), keep a dump of that fresh cluster in
 * `os.tmpdir()/troupe-pglite-template-<version>.tar.gz`, and start every new
 * cluster from it:
 *
 * - in memory: `PGlite.create({ loadDataDir })` from the template, which a
 *   process reads and gunzips once and keeps in memory;
 * - a directory that is missing or empty: the template is unpacked into a
 *   sibling staging directory, which is renamed into place, then opened. If
 *   the process dies part-way, no half-built cluster is left at the path.
 * - a directory that already holds a cluster: opened as is.
 *
 * The template file is written to a temporary name and renamed into place, so
 * other processes never read half a file. A `.lock` file makes processes that
 * start together wait for one initdb instead of all running it. If the lock's
 * owner died, or the lock is older than LOCK_STALE_MS, the lock is taken over.
 * A template that is unreadable or fails its tar checksums is rebuilt. So is
 * one that PGlite will not start from (this is retried once).
 * `TROUPE_PGLITE_TEMPLATE_DIR` overrides the directory the template is kept in.
 *
 * Timings measured with PGlite 0.5.16 on a busy 2-core machine. Plain PGlite.create()
 * runs initdb: ~2.9 s the first time in a process, ~1.5 s after that. With this module:
 * - the first open ever, which builds the template: ~3.5-4 s (one initdb);
 * - the first in-memory open in a process: ~0.7-1.1 s (read, gunzip, compile wasm);
 * - later in-memory opens: ~0.3-0.45 s;
 * - a fresh directory: ~0.9-1.1 s (mostly writing 40 MB to disk);
 * - reopening a directory: ~0.2-0.3 s.
 *
 * Behaviour of PGlite 0.5.16 checked by experiment (Postgres 18.6, one
 * backend, one session):
 * - pg_advisory_xact_lock, pg_advisory_xact_lock_shared,
 *   pg_try_advisory_xact_lock, hashtextextended(text, seed),
 *   `FOR UPDATE SKIP LOCKED` and gen_random_uuid() all work. There is only one
 *   session, so advisory and row locks are always granted and never block.
 *   They only exclude anything when the journal runs on a real server.
 * - int8 results arrive as JS number when safe and as bigint otherwise (for
 *   example hashtextextended). bigint parameters are accepted.
 * - PGlite serialises all work. `db.query`/`db.exec` called while a
 *   `db.transaction()` is open on another async path waits until that
 *   transaction commits or rolls back. It never interleaves and never sees
 *   uncommitted rows. Two `db.transaction()` calls run one after the other.
 *   So calling `db.query` (not `tx.query`) inside a transaction callback
 *   DEADLOCKS (it hangs for ever).
 * - `relaxedDurability` does nothing for memory and node filesystems (their
 *   syncToFs is a no-op), so it is not set here.
 * - PGlite itself does not stop two instances or processes from opening one
 *   directory at once, and they lose each other's writes (a CLI publish to a
 *   directory a worker held printed an id, and the message was gone). So a
 *   directory is opened only under its lock file (data-dir-lock.ts), released
 *   when the instance closes; a second opener gets DatabaseLockedError.
 */
import { PGlite } from "@electric-sql/pglite";
import { randomBytes } from "node:crypto";
import { promises as fsp, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { lockDataDir } from "./data-dir-lock.js";

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

/** How long a process waits for another one to finish building the template. */
const LOCK_WAIT_MS = 120_000;
/** A lock older than this is considered abandoned even if its pid looks alive. */
const LOCK_STALE_MS = 300_000;
const LOCK_POLL_MS = 100;

/** Opens embedded Postgres. dataDir undefined => in memory. Fast: never runs initdb twice on a machine. */
export async function openPGlite(dataDir: string | undefined): Promise<PGlite> {
  if (dataDir === undefined) return openInMemory();
  return openDirectory(path.resolve(dataDir));
}

// ---------------------------------------------------------------------------
// Opening

async function openInMemory(): Promise<PGlite> {
  const template = await getTemplate();
  try {
    return await startPGlite({ loadDataDir: template.blob });
  } catch (firstError) {
    // The template may be damaged in a way the checks did not catch. Rebuild once.
    await invalidateTemplate(template);
    const rebuilt = await getTemplate();
    if (rebuilt === template) throw firstError;
    return startPGlite({ loadDataDir: rebuilt.blob });
  }
}

/** Under the directory's lock (or DatabaseLockedError); closing the instance releases it. */
async function openDirectory(dir: string): Promise<PGlite> {
  const release = await lockDataDir(dir);
  let db: PGlite;
  try {
    db = await openDirectoryUnlocked(dir);
  } catch (error) {
    await release();
    throw error;
  }
  const close = db.close.bind(db);
  db.close = async () => {
    try {
      await close();
    } finally {
      await release();
    }
  };
  return db;
}

async function openDirectoryUnlocked(dir: string): Promise<PGlite> {
  const state = await inspectDirectory(dir);
  if (state === "cluster") return startPGlite({ dataDir: dir });
  if (state === "foreign") {
    throw new Error(`openPGlite: ${dir} is not empty and is not a Postgres data directory (no PG_VERSION)`);
  }

  let template = await getTemplate();
  for (let attempt = 0; ; attempt++) {
    const seeded = await seedDirectory(dir, template);
    try {
      return await startPGlite({ dataDir: dir });
    } catch (error) {
      // If another process seeded the directory, it is not ours to delete.
      if (!seeded || attempt > 0) throw error;
      // We built this directory from the template, so the template is suspect:
      // remove the directory and rebuild the template once.
      await fsp.rm(dir, { recursive: true, force: true });
      if (state === "empty") await fsp.mkdir(dir, { recursive: true });
      await invalidateTemplate(template);
      const rebuilt = await getTemplate();
      if (rebuilt === template) throw error;
      template = rebuilt;
    }
  }
}

async function startPGlite(options: { dataDir?: string; loadDataDir?: Blob }): Promise<PGlite> {
  const db = new PGlite(options);
  await db.waitReady;
  return db;
}

type DirState = "missing" | "empty" | "cluster" | "foreign";

async function inspectDirectory(dir: string): Promise<DirState> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return "missing";
    throw error;
  }
  if (entries.length === 0) return "empty";
  return entries.includes("PG_VERSION") ? "cluster" : "foreign";
}

/**
 * Unpacks the template into a staging directory next to `dir`, then renames it
 * into place. Returns false if another process put a cluster there first.
 */
async function seedDirectory(dir: string, template: Template): Promise<boolean> {
  await fsp.mkdir(path.dirname(dir), { recursive: true });
  const staging = `${dir}.seeding-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    const tar = Buffer.from(await template.blob.arrayBuffer());
    await extractTar(template.entries, tar, staging);
    try {
      // rename(2) replaces an empty directory atomically on POSIX.
      await fsp.rename(staging, dir);
      return true;
    } catch (error) {
      const code = errorCode(error);
      if (code !== "EEXIST" && code !== "ENOTEMPTY" && code !== "EPERM") throw error;
      const now = await inspectDirectory(dir);
      if (now === "cluster") return false; // someone else seeded it meanwhile
      if (now !== "empty") throw error;
      // Platforms that refuse to rename onto an empty directory (e.g. Windows).
      await fsp.rmdir(dir);
      await fsp.rename(staging, dir);
      return true;
    }
  } finally {
    await fsp.rm(staging, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Template: one per process in memory, one per machine on disk

interface Template {
  /**
   * Uncompressed tar of a fresh cluster, as produced by `dumpDataDir("none")`
   * (~40 MB, mostly one WAL segment; ~4.5 MB gzipped on disk). It is held only
   * as a Blob, which PGlite copies from on every open anyway.
   */
  readonly blob: Blob;
  /** Entries of `blob`, parsed and checked once. */
  readonly entries: readonly TarEntry[];
  /** Identity of the file it was read from (undefined if built in this process). */
  readonly fileId: string | undefined;
}

let templatePromise: Promise<Template> | undefined;

function getTemplate(): Promise<Template> {
  if (!templatePromise) {
    const p = loadOrBuildTemplate();
    templatePromise = p;
    p.catch(() => {
      if (templatePromise === p) templatePromise = undefined;
    });
  }
  return templatePromise;
}

/** Forget a template PGlite would not start from. Delete its file unless it was already replaced. */
async function invalidateTemplate(template: Template): Promise<void> {
  if (templatePromise && (await templatePromise.catch(() => undefined)) === template) {
    templatePromise = undefined;
  }
  const file = templateFile();
  if (template.fileId !== undefined && (await currentFileId(file)) === template.fileId) {
    await fsp.rm(file, { force: true });
  } else if (template.fileId === undefined) {
    // Built by this process and already bad. Remove it so the next build starts clean.
    await fsp.rm(file, { force: true });
  }
}

function templateFile(): string {
  const dir = process.env["TROUPE_PGLITE_TEMPLATE_DIR"] || os.tmpdir();
  return path.join(dir, `troupe-pglite-template-${pgliteVersion()}.tar.gz`);
}

async function loadOrBuildTemplate(): Promise<Template> {
  const file = templateFile();
  const lockFile = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const existing = await readTemplateFile(file);
    if (existing) return existing;

    const release = await tryLock(lockFile);
    if (release) {
      try {
        // Another process may have finished between our read and our lock.
        return (await readTemplateFile(file)) ?? (await buildTemplate(file));
      } finally {
        await release();
      }
    }
    if (Date.now() > deadline) return buildTemplate(file); // give up waiting; rename is atomic anyway
    await sleep(LOCK_POLL_MS);
  }
}

/** Returns undefined if the file is missing or damaged (it will then be rebuilt). */
async function readTemplateFile(file: string): Promise<Template | undefined> {
  let gz: Buffer;
  let id: string;
  try {
    const handle = await fsp.open(file, "r");
    try {
      const st = await handle.stat();
      id = statId(st);
      gz = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
  try {
    const tar = await gunzip(gz);
    return makeTemplate(tar, id);
  } catch {
    return undefined; // damaged; the caller rebuilds and atomically replaces it
  }
}

function statId(st: { dev: number; ino: number; size: number; mtimeMs: number }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

async function currentFileId(file: string): Promise<string | undefined> {
  try {
    return statId(await fsp.stat(file));
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

async function buildTemplate(file: string): Promise<Template> {
  const db = new PGlite(); // the one initdb
  let tar: Buffer;
  try {
    await db.waitReady;
    await db.exec("CHECKPOINT");
    const dump = await db.dumpDataDir("none");
    tar = Buffer.from(await dump.arrayBuffer());
  } finally {
    await db.close();
  }
  const template = makeTemplate(tar, undefined);
  try {
    await writeFileAtomic(file, await gzip(tar));
  } catch {
    // Cannot cache (read-only tmp, disk full...). Still usable in this process.
  }
  return template;
}

function makeTemplate(tar: Buffer, fileId: string | undefined): Template {
  const entries = parseTar(tar);
  if (!entries.some((e) => e.type === "file" && e.name === "PG_VERSION")) {
    throw new Error("PGlite template has no PG_VERSION");
  }
  return { blob: new Blob([tar], { type: "application/x-tar" }), entries, fileId };
}

async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
  try {
    await fsp.writeFile(tmp, data, { mode: 0o644 });
    await fsp.rename(tmp, file);
  } catch (error) {
    await fsp.rm(tmp, { force: true });
    throw error;
  }
}

/** Takes the lock file, or returns undefined if another live process holds it. */
async function tryLock(lockFile: string): Promise<(() => Promise<void>) | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fsp.mkdir(path.dirname(lockFile), { recursive: true });
      const handle = await fsp.open(lockFile, "wx");
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return () => fsp.rm(lockFile, { force: true });
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
    }
    if (!(await lockIsStale(lockFile))) return undefined;
    // The holder died. If two waiters both clear it, both build: wasteful but safe.
    await fsp.rm(lockFile, { force: true });
  }
  return undefined;
}

async function lockIsStale(lockFile: string): Promise<boolean> {
  try {
    const [st, text] = await Promise.all([fsp.stat(lockFile), fsp.readFile(lockFile, "utf8")]);
    if (Date.now() - st.mtimeMs > LOCK_STALE_MS) return true;
    const pid = Number.parseInt(text, 10);
    if (!Number.isInteger(pid) || pid <= 0) return false; // holder may still be writing its pid
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return errorCode(error) === "ESRCH";
    }
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false; // released meanwhile; caller re-reads
    throw error;
  }
}

let cachedVersion: string | undefined;

/** Version of the installed @electric-sql/pglite (its package.json is not in its exports map). */
function pgliteVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  let version = "unknown";
  try {
    let dir = path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
    for (let i = 0; i < 5; i++) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
          name?: unknown;
          version?: unknown;
        };
        if (pkg.name === "@electric-sql/pglite" && typeof pkg.version === "string") {
          version = pkg.version;
          break;
        }
      } catch {
        // no package.json here; go up
      }
      dir = path.dirname(dir);
    }
  } catch {
    // keep "unknown"
  }
  cachedVersion = version.replace(/[^A-Za-z0-9._-]/g, "_");
  return cachedVersion;
}

// ---------------------------------------------------------------------------
// Minimal ustar reader for the tar files PGlite's dumpDataDir writes
// (regular files and directories, names relative to the data directory).

interface TarEntry {
  readonly name: string;
  readonly type: "file" | "dir";
  readonly offset: number;
  readonly size: number;
}

const BLOCK = 512;

function parseTar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let pos = 0;
  while (pos + BLOCK <= tar.length) {
    const header = tar.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) return entries; // end-of-archive marker
    if (header.toString("latin1", 257, 262) !== "ustar") throw new Error("tar: bad magic");
    const expected = parseOctal(header, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== expected) throw new Error("tar: bad header checksum");

    const base = cString(header, 0, 100);
    const prefix = cString(header, 345, 155);
    const name = safeRelativeName(prefix ? `${prefix}/${base}` : base);
    const size = parseOctal(header, 124, 12);
    const flag = header[156];
    const offset = pos + BLOCK;
    if (offset + size > tar.length) throw new Error("tar: truncated");
    if (flag === 0x35 /* '5' */) {
      if (name) entries.push({ name, type: "dir", offset, size: 0 });
    } else if (flag === 0x30 /* '0' */ || flag === 0) {
      if (!name) throw new Error("tar: file without a name");
      entries.push({ name, type: "file", offset, size });
    } else {
      throw new Error(`tar: unsupported entry type ${flag}`);
    }
    pos = offset + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new Error("tar: missing end-of-archive marker");
}

/** Writes the entries under `root` (which must not exist): directories first, then files, a few at a time. */
async function extractTar(entries: readonly TarEntry[], tar: Buffer, root: string): Promise<void> {
  const dirs = new Set<string>();
  const addDir = (rel: string): void => {
    for (let d = rel; d !== "." && d !== "" && !dirs.has(d); d = path.posix.dirname(d)) dirs.add(d);
  };
  for (const entry of entries) addDir(entry.type === "dir" ? entry.name : path.posix.dirname(entry.name));

  await fsp.mkdir(root, { mode: 0o700 });
  // Parents sort before their children.
  for (const rel of [...dirs].sort()) await fsp.mkdir(path.join(root, rel), { mode: 0o700 });

  const files = entries.filter((e) => e.type === "file");
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) {
      const { name, offset, size } = files[i]!;
      await fsp.writeFile(path.join(root, name), tar.subarray(offset, offset + size), {
        mode: 0o600,
        flag: "wx",
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

function safeRelativeName(raw: string): string {
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === ".." || p.includes("\\") || p.includes("\0"))) {
    throw new Error(`tar: unsafe path ${JSON.stringify(raw)}`);
  }
  return parts.join("/");
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString("utf8", start, end === -1 || end > start + length ? start + length : end);
}

function parseOctal(buf: Buffer, start: number, length: number): number {
  const text = cString(buf, start, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new Error("tar: bad number field");
  return Number.parseInt(text, 8);
}

// ---------------------------------------------------------------------------

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
