/** Small, dependency-free statistics for benchmark samples (all values in milliseconds). */

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile on a sorted copy (p in [0, 100]). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length,
    mean,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    min: s[0] ?? NaN,
    max: s.at(-1) ?? NaN,
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The median of each field over several rounds' summaries. */
export function medianOf<K extends string>(rounds: readonly Record<K, number>[], keys: readonly K[]) {
  const out = {} as Record<K, number>;
  for (const k of keys) out[k] = median(rounds.map((r) => r[k]));
  return out;
}

export const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Wall clock with sub-millisecond resolution (epoch ms), comparable with Postgres clock_timestamp() on the same host. */
export const wallMs = () => performance.timeOrigin + performance.now();
