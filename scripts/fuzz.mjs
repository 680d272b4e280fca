#!/usr/bin/env node
// npm run fuzz: the fuzz suite (test/fuzz.test.ts) with more runs and a random seed.
// FUZZ_RUNS (default 20000 Troupe-method calls; ctx, tx, HTTP, dashboard and CLI scale from
// it) and FUZZ_SEED (default random) — the seed is printed so a failure can be replayed:
//   FUZZ_SEED=123 FUZZ_RUNS=20000 npm run fuzz
import { spawnSync } from "node:child_process";

const seed = process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
const runs = process.env.FUZZ_RUNS ?? "20000";
console.log(`npm run fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
const res = spawnSync(process.execPath, ["scripts/run-tests.mjs", "test/fuzz.test.ts"], {
  stdio: "inherit",
  env: {
    ...process.env,
    FUZZ_SEED: seed,
    FUZZ_RUNS: runs,
    TEST_TIMEOUT_MS: process.env.TEST_TIMEOUT_MS ?? "7200000",
  },
});
console.log(`npm run fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs} (replay with these)`);
process.exit(res.status ?? 1);
