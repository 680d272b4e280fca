/**
 * troupe benchmarks runner (the protocol is the project's benchmark spec, benchmarks.md; usage in
 * benchmarks/README.md).
 *
 *   npm run bench -- [scenario …] [--rounds N] [--quick] [--variant substr …] [--no-ceilings]
 *
 * Scenarios: ping-pong, fanout (default: all). For each scenario it prints a table, and
 * writes benchmarks/results/<scenario>.json (+ .svg chart; overwritten, earlier runs are in git)
 * with machine info and the ceilings measured in the same run (Redis PUBLISH round trip,
 * single-row INSERT commit).
 */
import os from "node:os";
import { fanout } from "./fanout.js";
import { measureCeilings, type Ceilings } from "./lib/ceilings.js";
import { machineInfo } from "./lib/env.js";
import { printCeilings, printTable, writeResult } from "./lib/report.js";
import type { Scenario } from "./lib/scenario.js";
import { summarize } from "./lib/stats.js";
import { pingPong } from "./ping-pong.js";

/** Register new scenarios (and, inside them, peers) here. */
const SCENARIOS: Scenario[] = [pingPong, fanout];

function parseArgs(argv: string[]) {
  const names: string[] = [];
  const variants: string[] = [];
  let rounds: number | undefined;
  let quick = false;
  let ceilings = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--rounds") rounds = Number(argv[++i]);
    else if (a === "--quick") quick = true;
    else if (a === "--variant") variants.push(argv[++i]!);
    else if (a === "--no-ceilings") ceilings = false;
    else if (a === "--help" || a === "-h") {
      console.log(
        `usage: npm run bench -- [${SCENARIOS.map((s) => s.name).join("|")} …] [--rounds N] [--quick] [--variant substr] [--no-ceilings]`,
      );
      for (const s of SCENARIOS)
        console.log(`  ${s.name}: ${s.description}\n    variants: ${s.variants.join("; ")}`);
      process.exit(0);
    } else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
    else names.push(a);
  }
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1))
    throw new Error("--rounds must be ≥ 1");
  const selected =
    names.length === 0
      ? SCENARIOS
      : names.map((n) => {
          const s = SCENARIOS.find((x) => x.name === n);
          if (!s)
            throw new Error(`unknown scenario "${n}" (known: ${SCENARIOS.map((x) => x.name).join(", ")})`);
          return s;
        });
  return { selected, variants, rounds, quick, ceilings };
}

const args = parseArgs(process.argv.slice(2));
const command = `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim();
const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

const machine = await machineInfo();
log(
  `${machine.cpus}× ${machine.cpuModel}, node ${machine.node}, ${machine.postgres.split(" on ")[0]}, redis ${machine.redis}, troupe ${machine.troupeCommit}`,
);
const none = summarize([]);
let ceilings: Ceilings = { redisPublishRtt: none, pgInsertCommit: none, pgbenchInsertC8Tps: null };
if (args.ceilings) {
  log("measuring ceilings …");
  ceilings = await measureCeilings();
}
console.log(printCeilings(ceilings));

const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);
for (const s of args.selected) {
  const loadStart = load();
  const result = await s.run({
    rounds: args.rounds ?? (s.name === "fanout" ? 5 : 3),
    quick: args.quick,
    ceilings,
    variants: args.variants,
    log,
  });
  // The machine is shared: keep the load around the measurement next to the figures.
  result.config.loadavg = { start: loadStart, end: load() };
  console.log(printTable(result));
  log(`load average (1/5/15 min) at start ${loadStart.join(" ")}, at end ${load().join(" ")}`);
  const files = await writeResult(result, machine, ceilings, command);
  log(`wrote ${files.json} and ${files.svg}`);
}
// Anything left open (a stray timer or socket) must not keep the runner alive.
process.exit(0);
