import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import type { PGlite } from "@electric-sql/pglite";

import { openPGlite } from "../src/storage/pglite-open.js";

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

  test("a non-empty directory that is not a cluster is refused", async () => {
    const dir = await mkdtemp(path.join(scratch, "foreign-"));
    const { writeFile } = await import("node:fs/promises");
    await writeFile(path.join(dir, "notes.txt"), "not postgres");
    await assert.rejects(openPGlite(dir), /not a Postgres data directory/);
  });
});
