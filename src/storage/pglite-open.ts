/**
 * Fast start for embedded Postgres (PGlite).
 *
 * A fresh PGlite cluster runs initdb, ~3 s. Instead every new cluster starts from a template
 * of a fresh one, built once per machine and PGlite version (pglite-template.ts):
 *
 * - in memory: `PGlite.create({ loadDataDir })` from the template's dump, which a process
 *   reads and gunzips once and keeps in memory;
 * - a directory that is missing or empty: the template's files are copied into a sibling
 *   staging directory, which is renamed into place, then opened. If the process dies
 *   part-way, no half-built cluster is left at the path.
 * - a directory that already holds a cluster: opened as is.
 *
 * A template that a copy or PGlite rejects is rebuilt, and the open retried once.
 *
 * Timings measured with PGlite 0.5.16 on a 2-core machine. Plain PGlite.create() runs
 * initdb: ~2.9 s the first time in a process, ~1.5 s after that. With this module:
 * - the first open ever, which builds the template: ~2.5-4 s (one initdb);
 * - the first in-memory open in a process: ~0.35 s (read, gunzip, compile wasm);
 * - later in-memory opens: ~0.3-0.35 s;
 * - a fresh directory: ~0.3-0.5 s (copying 40 MB of files, then opening);
 * - reopening a directory: ~0.2 s.
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
import { promises as fsp } from "node:fs";
import path from "node:path";
import { errorCode, lockDataDir } from "./data-dir-lock.js";
import {
  TemplateDamagedError,
  copyTemplate,
  getTemplate,
  invalidateTemplate,
  type Template,
} from "./pglite-template.js";

/** Opens embedded Postgres. dataDir undefined => in memory. Fast: never runs initdb twice on a machine. */
export async function openPGlite(dataDir: string | undefined): Promise<PGlite> {
  if (dataDir === undefined) return openInMemory();
  return openDirectory(path.resolve(dataDir));
}

async function openInMemory(): Promise<PGlite> {
  const template = await getTemplate();
  try {
    return await startPGlite({ loadDataDir: await template.blob() });
  } catch (firstError) {
    // The template may be damaged in a way the checks did not catch. Rebuild once.
    await invalidateTemplate(template);
    const rebuilt = await getTemplate();
    if (rebuilt === template) throw firstError;
    return startPGlite({ loadDataDir: await rebuilt.blob() });
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
    let seeded = false;
    try {
      seeded = await seedDirectory(dir, template);
      return await startPGlite({ dataDir: dir });
    } catch (error) {
      // The copy failed on the template's side, or PGlite will not start a cluster we copied:
      // the template is suspect. (If another process seeded the directory, it is not ours.)
      const suspect = error instanceof TemplateDamagedError || seeded;
      if (!suspect || attempt > 0) throw error;
      if (seeded) {
        await fsp.rm(dir, { recursive: true, force: true });
        if (state === "empty") await fsp.mkdir(dir, { recursive: true });
      }
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
 * Copies the template into a staging directory next to `dir`, then renames it into place.
 * Returns false if another process put a cluster there first.
 */
async function seedDirectory(dir: string, template: Template): Promise<boolean> {
  await fsp.mkdir(path.dirname(dir), { recursive: true });
  const staging = `${dir}.seeding-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await copyTemplate(template, staging);
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
