import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Ceilings } from "./ceilings.js";
import type { MachineInfo } from "./env.js";
import type { ScenarioResult } from "./scenario.js";

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "results");

function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return v.toFixed(digits);
}

export function printTable(r: ScenarioResult): string {
  const head = ["system", "variant", ...r.columns.map((c) => c.label)];
  const body = r.rows.map((row) => [
    row.system,
    row.variant + (row.problems.length ? " (!)" : ""),
    ...r.columns.map((c) => fmt(row.metrics[c.key], c.digits)),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const out = [
    `\n== ${r.scenario}: ${r.description}`,
    line(head),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...body.map(line),
  ];
  for (const row of r.rows)
    for (const p of row.problems) out.push(`  (!) ${row.system} / ${row.variant}: ${p}`);
  for (const [k, v] of Object.entries(r.ceilingRatios))
    if (v !== null && Number.isFinite(v)) out.push(`  ceiling ratio ${k}: ${fmt(v, 3)}`);
  for (const n of r.notes) out.push(`  note: ${n}`);
  return out.join("\n");
}

export function printCeilings(c: Ceilings): string {
  return [
    "\n== ceilings (same run, same services)",
    `redis PUBLISH round trip (ioredis): p50 ${fmt(c.redisPublishRtt.p50, 3)} ms, p99 ${fmt(c.redisPublishRtt.p99, 3)} ms`,
    `pg single-row INSERT commit, 1 client: p50 ${fmt(c.pgInsertCommit.p50, 3)} ms, p99 ${fmt(c.pgInsertCommit.p99, 3)} ms (${fmt(1000 / c.pgInsertCommit.mean, 0)}/s)`,
    `pgbench single-row INSERT, 8 clients: ${c.pgbenchInsertC8Tps === null ? "n/a (pgbench missing)" : `${fmt(c.pgbenchInsertC8Tps, 0)} TPS`}`,
  ].join("\n");
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A plain horizontal bar chart (one group per row, one bar per metric), no dependencies. */
export function chartSvg(r: ScenarioResult): string {
  const metrics = r.chart.metrics;
  const colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"];
  const labelW = 260;
  const barW = 420;
  const barH = 16;
  const groupH = metrics.length * (barH + 3) + 14;
  const top = 48;
  const rows = r.rows;
  const height = top + rows.length * groupH + 40;
  const max = Math.max(1e-9, ...rows.flatMap((row) => metrics.map((m) => row.metrics[m] ?? 0)));
  const label = (k: string) => r.columns.find((c) => c.key === k)?.label ?? k;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 120}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(r.chart.title)}</text>`,
  ];
  metrics.forEach((m, i) => {
    const x = labelW + i * 140;
    parts.push(`<rect x="${x}" y="30" width="10" height="10" fill="${colors[i % colors.length]}"/>`);
    parts.push(`<text x="${x + 14}" y="39">${esc(label(m))}</text>`);
  });
  rows.forEach((row, gi) => {
    const y0 = top + gi * groupH;
    parts.push(`<text x="10" y="${y0 + groupH / 2}">${esc(`${row.system} — ${row.variant}`)}</text>`);
    metrics.forEach((m, i) => {
      const v = row.metrics[m];
      const y = y0 + i * (barH + 3);
      const w = v === null || v === undefined ? 0 : (v / max) * barW;
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colors[i % colors.length]}"/>`,
      );
      parts.push(
        `<text x="${labelW + w + 4}" y="${y + 12}">${v === null || v === undefined ? "—" : v.toFixed(2)}</text>`,
      );
    });
  });
  parts.push(`<text x="10" y="${height - 12}" fill="#666">${esc(r.chart.unit)}; medians over rounds</text>`);
  parts.push("</svg>");
  return parts.join("\n");
}

export async function writeResult(
  r: ScenarioResult,
  machine: MachineInfo,
  ceilings: Ceilings,
  command: string,
): Promise<{ json: string; svg: string }> {
  await mkdir(RESULTS_DIR, { recursive: true });
  // One name per scenario, overwritten by every run: the latest run is what the docs show,
  // earlier runs are in git history (the run's date is inside the JSON, under machine.date).
  const base = join(RESULTS_DIR, r.scenario);
  const json = `${base}.json`;
  const svg = `${base}.svg`;
  await writeFile(json, JSON.stringify({ ...r, command, machine, ceilings }, null, 2) + "\n");
  await writeFile(svg, chartSvg(r) + "\n");
  return { json, svg };
}
