/** What a campaign prints: one block per round and the final summary line. */
import { ALL_FAULT_KINDS, type FaultKind } from "./faults.js";
import type { RoundResult } from "./round.js";

export function faultCounts(f: Partial<Record<FaultKind, number>>): string {
  const parts = ALL_FAULT_KINDS.filter((k) => f[k]).map((k) => `${k}=${f[k]}`);
  return parts.length > 0 ? parts.join(" ") : "none";
}

export function roundReport(r: RoundResult, rounds: number, verbose: boolean): string {
  const nFaults = Object.values(r.faults).reduce((a, b) => a + (b ?? 0), 0);
  const lines = [
    `round ${r.round + 1}/${rounds} seed=${r.seed} (round ${r.round}): ${nFaults} faults [${faultCounts(r.faults)}], ` +
      `${r.messages} messages (${r.deliveries} deliveries), ${r.violationCount} violations, ` +
      `${r.crashes.length} worker crashes, ${r.clientRetries} client retries, ${r.seconds.toFixed(1)}s`,
  ];
  if (verbose || r.violationCount > 0 || r.crashes.length > 0)
    for (const f of r.faultLog) lines.push(`  fault ${f}`);
  if (verbose) lines.push(`  time: ${r.phases}`);
  if (verbose && r.clientRetries > 0)
    lines.push(`  client retries by cause: ${JSON.stringify(r.retryCauses)}`);
  for (const c of r.crashes) {
    lines.push(`  CRASH ${c.process}: exited on its own (code ${c.code}, signal ${c.signal}): ${c.cause}`);
    if (verbose) lines.push(`${c.stderrHead.slice(0, 2500)}\n${c.tail}`.replace(/^/gm, "    "));
  }
  for (const v of r.violations) lines.push(`  VIOLATION ${v}`);
  return lines.join("\n");
}

export interface Totals {
  rounds: number;
  faults: Partial<Record<FaultKind, number>>;
  messages: number;
  violations: number;
  crashes: number;
}

export function addRound(t: Totals, r: RoundResult): void {
  t.rounds++;
  for (const [k, n] of Object.entries(r.faults))
    t.faults[k as FaultKind] = (t.faults[k as FaultKind] ?? 0) + (n ?? 0);
  t.messages += r.messages;
  t.violations += r.violationCount;
  t.crashes += r.crashes.length;
}

export function summary(t: Totals): string {
  const f = Object.values(t.faults).reduce((a, b) => a + (b ?? 0), 0);
  return (
    `chaos: ${t.rounds} rounds, ${f} faults, ${t.messages} messages, ${t.violations} violations, ${t.crashes} worker crashes` +
    `\nchaos: faults by kind: ${faultCounts(t.faults)}`
  );
}
