/**
 * `npm run chaos`: the fault campaign. Starts a private PostgreSQL and Redis on spare
 * ports (and a TCP proxy in front of PostgreSQL), then runs N seeded rounds (chaos/round.ts)
 * and exits non-zero on any violation or worker crash.
 *
 *   npm run chaos -- [--rounds 100] [--seed S] [--first R] [--short] [--keep] [--verbose]
 *                    [--faults kill9,blackhole,…]
 *
 * --short: the CI variant (3 rounds, shorter rounds). --first: start at round R (with the
 * same --seed, reproduces that round's plan and faults). --keep: keep a failing round's
 * database (and the PostgreSQL data directory) for inspection. --faults: only these kinds
 * (a different schedule than the full campaign's: for investigating one kind).
 */
import { parseArgs } from "node:util";
import { startPrivatePostgres, startPrivateRedis } from "../test/support/servers.js";
import { ALL_FAULT_KINDS, type FaultKind } from "./faults.js";
import { PgProxy } from "../test/support/proxy.js";
import { addRound, roundReport, summary, type Totals } from "./report.js";
import { runRound } from "./round.js";

const USAGE = `usage: npm run chaos -- [--rounds 100] [--seed S] [--first R] [--short] [--keep] [--verbose]
                      [--faults kind,kind,…]   (see docs/reliability.md)`;

function parseCommandLine() {
  try {
    return parseArgs({ options: OPTIONS });
  } catch (err) {
    console.error(`chaos: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

const OPTIONS = {
  rounds: { type: "string" },
  seed: { type: "string" },
  first: { type: "string", default: "0" },
  short: { type: "boolean", default: false },
  keep: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
  faults: { type: "string" },
  help: { type: "boolean", default: false },
} as const;
const { values } = parseCommandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const faultKinds = values.faults?.split(",").map((k) => k.trim()) as FaultKind[] | undefined;
for (const k of faultKinds ?? [])
  if (!ALL_FAULT_KINDS.includes(k)) {
    console.error(`chaos: unknown fault kind "${k}" (kinds: ${ALL_FAULT_KINDS.join(", ")})`);
    process.exit(2);
  }
const short = values.short;
const rounds = Number(values.rounds ?? (short ? 3 : 100));
const first = Number(values.first);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
for (const [name, n] of [
  ["rounds", rounds],
  ["seed", seed],
  ["first", first],
] as const)
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`chaos: --${name} must be a non-negative integer`);
    process.exit(2);
  }

const log = (line: string) => console.log(line);
log(
  `chaos: ${rounds} rounds${short ? " (short)" : ""}, seed ${seed} — reproduce: npm run chaos -- --seed ${seed}` +
    `${short ? " --short" : ""} --rounds ${rounds}${first ? ` --first ${first}` : ""}` +
    `${values.faults ? ` --faults ${values.faults}` : ""}`,
);

const pg = await startPrivatePostgres({ maxConnections: 300 });
const redis = await startPrivateRedis();
const proxy = new PgProxy(pg.port);
await proxy.start();
log(`chaos: PostgreSQL on 127.0.0.1:${pg.port} (proxy :${proxy.port}), Redis on 127.0.0.1:${redis.port}`);

const totals: Totals = { rounds: 0, faults: {}, messages: 0, violations: 0, crashes: 0 };
let keptData = false;
let interrupted = false;
process.once("SIGINT", () => (interrupted = true)); // finish the round, then stop
// Killed (a CI timeout): the servers are daemons of their own; do not leave them behind.
process.once("SIGTERM", () => {
  console.log("chaos: SIGTERM: stopping PostgreSQL and Redis");
  void redis.close();
  pg.close();
  process.exit(1);
});
try {
  for (let r = first; r < first + rounds && !interrupted; r++) {
    const res = await runRound({
      seed,
      round: r,
      short,
      keep: values.keep,
      faultKinds,
      pg,
      redis,
      proxy,
      log,
    });
    addRound(totals, res);
    log(roundReport(res, first + rounds, values.verbose));
    if (values.keep && (res.violationCount > 0 || res.crashes.length > 0)) {
      keptData = true;
      log(`  kept database ${res.database} in ${pg.dataDir}`);
    }
  }
} finally {
  await proxy.stop();
  await redis.close();
  if (keptData) {
    pg.stop("fast");
    log(
      `chaos: PostgreSQL stopped, data kept: pg_ctl -D ${pg.dataDir} -o "-p ${pg.port}" start (as the postgres user when root)`,
    );
  } else pg.close();
}
log(summary(totals));
process.exit(totals.violations > 0 || totals.crashes > 0 || interrupted ? 1 : 0);
