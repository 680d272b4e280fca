import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat, truncate } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import type { PGlite } from "@electric-sql/pglite";

import { openPGlite } from "../src/storage/pglite-open.js";
import { runNode } from "./support/run-node.js";

async function tableExists(db: PGlite, name: string): Promise<boolean> {
  const r = await db.query<{ present: boolean }>("select to_regclass($1) is not null as present", [name]);
  return r.rows[0]?.present === true;
}

describe("openPGlite", () => {
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), "troupe-pglite-open-test-"));
  });

  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  test("in-memory instances are independent", async () => {
    const a = await openPGlite(undefined);
    try {
      const b = await openPGlite(undefined);
      try {
        await a.exec("create table only_in_a (id int primary key)");
        await a.query("insert into only_in_a values (1)");
        assert.equal(await tableExists(a, "only_in_a"), true);
        assert.equal(await tableExists(b, "only_in_a"), false);

        await b.exec("create table only_in_b (id int)");
        assert.equal(await tableExists(a, "only_in_b"), false);

        const r = await a.query<{ n: number }>("select count(*)::int as n from only_in_a");
        assert.equal(r.rows[0]?.n, 1);
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  });

  test("a directory keeps its data across close and reopen", async () => {
    const dir = path.join(scratch, "nested", "db"); // parent does not exist yet
    const first = await openPGlite(dir);
    try {
      await first.exec("create table kv (k text primary key, v text not null)");
      await first.query("insert into kv values ($1, $2)", ["greeting", "hello"]);
    } finally {
      await first.close();
    }

    const second = await openPGlite(dir);
    try {
      const r = await second.query<{ v: string }>("select v from kv where k = $1", ["greeting"]);
      assert.deepEqual(r.rows, [{ v: "hello" }]);
    } finally {
      await second.close();
    }
  });

  test("an existing empty directory is seeded", async () => {
    const dir = await mkdtemp(path.join(scratch, "empty-"));
    const db = await openPGlite(dir);
    try {
      const r = await db.query<{ one: number }>("select 1 as one");
      assert.deepEqual(r.rows, [{ one: 1 }]);
    } finally {
      await db.close();
    }
  });

  test("a fresh directory is private to its owner (0700, files 0600)", async () => {
    const dir = path.join(scratch, "private");
    const db = await openPGlite(dir);
    await db.close();
    assert.equal((await stat(dir)).mode & 0o077, 0, "the data directory");
    assert.equal((await stat(path.join(dir, "global"))).mode & 0o077, 0, "a directory in it");
    assert.equal((await stat(path.join(dir, "PG_VERSION"))).mode & 0o077, 0, "a file in it");
  });

  test("a damaged template (a file gone from its cluster, its dump unreadable) is rebuilt", async () => {
    // A template of this test's own, used by fresh processes (this one keeps its template in memory).
    const cache = await mkdtemp(path.join(scratch, "template-"));
    const env = { ...process.env, TROUPE_PGLITE_TEMPLATE_DIR: cache };
    const open = async (...targets: string[]) => {
      const run = await runNode(["test/fixtures/pglite-open-child.ts", ...targets], env);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { target: string; classes: number });
      assert.deepEqual(
        lines.map((l) => l.target),
        targets,
      );
      for (const l of lines) assert.ok(l.classes > 100, `${l.target} is a working cluster`);
    };

    await open(path.join(scratch, "from-new-template")); // builds it
    const [root] = await readdir(cache);
    assert.ok(
      root !== undefined && root.startsWith("troupe-pglite-template-"),
      `template in ${cache}: ${root}`,
    );
    const template = path.join(cache, root);
    const control = path.join(template, "pgdata", "global", "pg_control");
    const dump = path.join(template, "pgdata.tar.gz");
    const builtAt = async () => (await stat(path.join(template, "files.json"))).mtimeMs;

    // A file gone from the cluster (as a tmp cleaner might): a directory open rebuilds it.
    const first = await builtAt();
    await rm(control);
    await open(path.join(scratch, "after-a-lost-file"));
    assert.ok((await stat(control)).isFile(), "the template's cluster was rebuilt");
    assert.ok((await builtAt()) > first);
    assert.ok((await stat(path.join(scratch, "after-a-lost-file", "global", "pg_control"))).isFile());

    // An unreadable dump: an in-memory open rebuilds it.
    const second = await builtAt();
    await truncate(dump, 1000);
    await open("memory");
    assert.ok((await builtAt()) > second, "the template was rebuilt");
    assert.ok((await stat(dump)).size > 1_000_000, "with a whole dump");
  });

  test("a non-empty directory that is not a cluster is refused", async () => {
    const dir = await mkdtemp(path.join(scratch, "foreign-"));
    const { writeFile } = await import("node:fs/promises");
    await writeFile(path.join(dir, "notes.txt"), "not postgres");
    await assert.rejects(openPGlite(dir), /not a Postgres data directory/);
  });
});
