#!/usr/bin/env node
// Runs the test suite with node's own runner (Node 20 does not expand globs: we list files).
// Backend: embedded PGlite by default; real Postgres + Redis when TROUPE_TEST_DATABASE_URL
// (and TROUPE_TEST_REDIS_URL) are set. Extra args are test files or name filters.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "fixtures" ? [] : find(p);
    return name.endsWith(".test.ts") ? [p] : [];
  });
}

const args = process.argv.slice(2);
const files = args.length > 0 ? args : find("test").sort();
const backend = process.env.TROUPE_TEST_DATABASE_URL ? "postgres + redis" : "embedded PGlite";
console.log(`troupe tests on ${backend}: ${files.length} files`);
const res = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-reporter=spec",
    // No single test may hang the run; the slowest (the randomized invariant
    // run) sets its own, lower, limit.
    `--test-timeout=${process.env.TEST_TIMEOUT_MS ?? 12 * 60_000}`,
    `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`,
    ...files,
  ],
  { stdio: "inherit", env: process.env },
);
process.exit(res.status ?? 1);
