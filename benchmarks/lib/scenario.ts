import type { Ceilings } from "./ceilings.js";

/** One line of a scenario's table: a system (troupe, later its peers) in one configuration. */
export interface ResultRow {
  /** "troupe", later "dbos", "pg-boss" … */
  system: string;
  /** The configuration, e.g. "pg+redis, 1 process". */
  variant: string;
  /** Medians over the rounds (the figures the table and chart show). */
  metrics: Record<string, number | null>;
  /** Per-round figures and anything else worth keeping. */
  rounds: unknown[];
  /** Failed checks / anomalies for this row (empty when clean). */
  problems: string[];
}

export interface Column {
  key: string;
  label: string;
  /** Digits after the point in the printed table (default 2). */
  digits?: number;
}

export interface ScenarioResult {
  scenario: string;
  description: string;
  config: Record<string, unknown>;
  columns: Column[];
  rows: ResultRow[];
  /** Which metric keys the chart draws (bars per row), with a unit for the axis. */
  chart: { metrics: string[]; unit: string; title: string };
  /** Ratios to the ceilings measured in the same run. */
  ceilingRatios: Record<string, number | null>;
  notes: string[];
}

export interface ScenarioContext {
  rounds: number;
  /** Smaller N for a smoke run. */
  quick: boolean;
  ceilings: Ceilings;
  /** Selected variants (empty = all). */
  variants: string[];
  log: (msg: string) => void;
}

export interface Scenario {
  name: string;
  description: string;
  /** Variant names this scenario knows (for --variant filtering). */
  variants: string[];
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

/** Peers (DBOS, pg-boss, …) plug in here later: a scenario asks each registered system for its rows. */
export const wants = (ctx: ScenarioContext, variant: string) =>
  ctx.variants.length === 0 || ctx.variants.some((v) => variant.includes(v));
