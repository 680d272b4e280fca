/**
 * The template cluster for fast embedded starts: initdb runs once per machine (per PGlite
 * version) and every new cluster starts as a copy of that fresh one. It is kept in
 * `os.tmpdir()` (or `TROUPE_PGLITE_TEMPLATE_DIR`) as one directory,
 * `troupe-pglite-template-<version>/`, holding:
 * - `pgdata/` — the cluster as plain files (directories 0700, files 0600), copied file by
 *   file into a new data directory (a reflink where the filesystem has them);
 * - `pgdata.tar.gz` — PGlite's own dump of it (`dumpDataDir`), which an in-memory instance
 *   is loaded from (`loadDataDir`): PGlite writes and reads that tar itself;
 * - `files.json` — the cluster's directories and files. A copy takes exactly these, so a
 *   template that lost a file (a tmp cleaner) fails the copy instead of starting broken.
 *
 * It is built in a staging directory and renamed into place, so other processes see all of
 * it or none. Processes that start together wait on a lock (data-dir-lock.ts, `<dir>.lock`)
 * for one build instead of all running initdb; a dead holder's lock is taken over, and after
 * LOCK_WAIT_MS a waiter builds anyway (the rename keeps that safe). A template that cannot
 * be read, or that a copy or PGlite rejects, is removed and rebuilt (pglite-open.ts retries
 * once). If the cache directory is not writable, the template lives in this process only.
 */
import { PGlite } from "@electric-sql/pglite";
import { randomBytes } from "node:crypto";
import { constants, promises as fsp, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { DatabaseLockedError } from "../api/errors.js";
import { errorCode, lockDataDir } from "./data-dir-lock.js";

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

/** How long a process waits for another one to finish building the template. */
const LOCK_WAIT_MS = 120_000;
const LOCK_POLL_MS = 100;
/** Files copied at once into a new data directory. */
const COPY_CONCURRENCY = 8;

export interface Template {
  /** The fresh cluster as a tar (~40 MB, mostly one WAL segment), read and gunzipped once. */
  blob(): Promise<Blob>;
  /** The cluster as a directory on disk; undefined if the cache could not be written. */
  readonly disk: DiskTemplate | undefined;
}

interface DiskTemplate {
  readonly root: string;
  /** Relative to `pgdata/`, parents before children. */
  readonly dirs: readonly string[];
  readonly files: readonly string[];
  /** Identity of files.json, so only the template judged bad is removed. */
  readonly id: string;
}

/** The template did not hold what it promised (a file gone, an unreadable dump). */
export class TemplateDamagedError extends Error {
  constructor(what: string, options?: { cause: unknown }) {
    super(`PGlite template damaged: ${what}`, options);
  }
}

let templatePromise: Promise<Template> | undefined;

/** One template per process, read (or built) once. */
export function getTemplate(): Promise<Template> {
  if (!templatePromise) {
    const p = loadOrBuild();
    templatePromise = p;
    p.catch(() => {
      if (templatePromise === p) templatePromise = undefined;
    });
  }
  return templatePromise;
}

/** Forgets a template that failed and removes it from disk, unless it was already replaced. */
export async function invalidateTemplate(template: Template): Promise<void> {
  if (templatePromise && (await templatePromise.catch(() => undefined)) === template) {
    templatePromise = undefined;
  }
  const disk = template.disk;
  if (disk && (await fileId(path.join(disk.root, "files.json"))) === disk.id) await removeTree(disk.root);
}

/** Creates `dest` (which must not exist) as a copy of the template cluster. */
export async function copyTemplate(template: Template, dest: string): Promise<void> {
  const disk = template.disk;
  if (!disk) {
    // Only in memory: PGlite unpacks its dump into the directory itself.
    await fsp.mkdir(dest, { mode: 0o700 });
    const db = new PGlite({ dataDir: dest, loadDataDir: await template.blob() });
    await db.waitReady;
    await db.close();
    return;
  }
  const from = path.join(disk.root, "pgdata");
  await fsp.mkdir(dest, { mode: 0o700 });
  for (const dir of disk.dirs) await fsp.mkdir(path.join(dest, dir), { mode: 0o700 });
  let next = 0;
  const copier = async (): Promise<void> => {
    for (let i = next++; i < disk.files.length; i = next++) {
      const file = disk.files[i]!;
      try {
        await fsp.copyFile(
          path.join(from, file),
          path.join(dest, file),
          constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE,
        );
      } catch (error) {
        if (errorCode(error) === "ENOENT")
          throw new TemplateDamagedError(`${file} is gone`, { cause: error });
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: COPY_CONCURRENCY }, copier));
}

function templateRoot(): string {
  const dir = process.env["TROUPE_PGLITE_TEMPLATE_DIR"] || os.tmpdir();
  return path.join(dir, `troupe-pglite-template-${pgliteVersion()}`);
}

async function loadOrBuild(): Promise<Template> {
  const root = templateRoot();
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const existing = await readTemplate(root);
    if (existing) return existing;
    let release: (() => Promise<void>) | undefined;
    try {
      release = await lockDataDir(root);
    } catch (error) {
      if (!(error instanceof DatabaseLockedError)) throw error;
    }
    if (release) {
      try {
        // Another process may have finished between our read and our lock.
        return (await readTemplate(root)) ?? (await build(root));
      } finally {
        await release();
      }
    }
    if (Date.now() > deadline) return build(root); // give up waiting; the rename keeps it safe
    await sleep(LOCK_POLL_MS);
  }
}

/** The template at `root`, or undefined if it is missing or damaged (then it is rebuilt). */
async function readTemplate(root: string): Promise<Template | undefined> {
  const list = path.join(root, "files.json");
  let id: string;
  let text: string;
  try {
    const handle = await fsp.open(list, "r");
    try {
      id = statId(await handle.stat());
      text = await handle.readFile("utf8");
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined; // none, or not a template: build one
    throw error;
  }
  const parsed = parseFileList(text);
  if (!parsed) return undefined;
  const tarFile = path.join(root, "pgdata.tar.gz");
  let blob: Promise<Blob> | undefined;
  return {
    disk: { root, id, ...parsed },
    blob: () => (blob ??= readDump(tarFile)),
  };
}

async function readDump(file: string): Promise<Blob> {
  try {
    const tar = await gunzip(await fsp.readFile(file));
    return new Blob([tar], { type: "application/x-tar" });
  } catch (error) {
    throw new TemplateDamagedError(`${file} is unreadable`, { cause: error });
  }
}

function parseFileList(text: string): { dirs: string[]; files: string[] } | undefined {
  try {
    const v = JSON.parse(text) as { dirs?: unknown; files?: unknown };
    const names = (x: unknown): x is string[] => Array.isArray(x) && x.every((n) => isSafeName(n));
    if (!names(v.dirs) || !names(v.files) || !v.files.includes("PG_VERSION")) return undefined;
    return { dirs: v.dirs, files: v.files };
  } catch {
    return undefined;
  }
}

/** A relative path inside the cluster (the list is read from a shared directory). */
function isSafeName(name: unknown): boolean {
  if (typeof name !== "string" || name === "" || path.isAbsolute(name)) return false;
  return name.split(/[/\\]/).every((p) => p !== "" && p !== "." && p !== ".." && !p.includes("\0"));
}

async function build(root: string): Promise<Template> {
  const staging = `${root}.building-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await fsp.mkdir(staging, { recursive: true });
    const pgdata = path.join(staging, "pgdata");
    const dump = await initdb(pgdata);
    const list = await listAndSeal(pgdata);
    await fsp.writeFile(path.join(staging, "pgdata.tar.gz"), await gzip(await dump.arrayBuffer()));
    await fsp.writeFile(path.join(staging, "files.json"), JSON.stringify(list));
    await removeTree(root); // a damaged one, if any (we hold the lock, or gave up waiting for it)
    await fsp.rename(staging, root).catch(async (error: unknown) => {
      const code = errorCode(error);
      if (code !== "EEXIST" && code !== "ENOTEMPTY") throw error; // another builder was first
    });
    const template = await readTemplate(root);
    if (template) return template;
    throw new Error(`openPGlite: the template built at ${root} cannot be read back`);
  } catch {
    // Cannot cache (read-only tmp, disk full …): a template for this process only.
    return buildInMemory();
  } finally {
    await fsp.rm(staging, { recursive: true, force: true });
  }
}

async function buildInMemory(): Promise<Template> {
  const blob = await initdb(undefined);
  return { disk: undefined, blob: () => Promise.resolve(blob) };
}

/** The one initdb: a fresh cluster (in `dataDir`, or in memory), returned as PGlite's dump. */
async function initdb(dataDir: string | undefined): Promise<Blob> {
  const db = new PGlite(dataDir === undefined ? {} : { dataDir });
  try {
    await db.waitReady;
    await db.exec("CHECKPOINT");
    return await db.dumpDataDir("none");
  } finally {
    await db.close();
  }
}

/** The cluster's directories and files, made private (a data directory must be: 0700 / 0600). */
async function listAndSeal(pgdata: string): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fsp.readdir(path.join(pgdata, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        await fsp.chmod(path.join(pgdata, name), 0o700);
        dirs.push(name);
        await walk(name);
      } else if (entry.isFile()) {
        await fsp.chmod(path.join(pgdata, name), 0o600);
        files.push(name);
      } else {
        throw new Error(`openPGlite: unexpected entry ${name} in a fresh cluster`);
      }
    }
  };
  await fsp.chmod(pgdata, 0o700);
  await walk("");
  return { dirs, files };
}

/** Moves the tree aside first, so nobody finds half of it under its name. */
async function removeTree(dir: string): Promise<void> {
  const aside = `${dir}.removing-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await fsp.rename(dir, aside);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return;
    throw error;
  }
  await fsp.rm(aside, { recursive: true, force: true });
}

function statId(st: { dev: number; ino: number; size: number; mtimeMs: number }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

async function fileId(file: string): Promise<string | undefined> {
  try {
    return statId(await fsp.stat(file));
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
