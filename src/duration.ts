import { ValidationError } from "./api/errors.js";

/** Milliseconds as a number, or a string such as "250ms", "5s", "10m", "1h", "7d". */
export type Duration = number | string;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;
/** Anything longer than ~100 years is a typo, not a timeout. */
const MAX_MS = 100 * 365 * 86_400_000;

export function toMillis(value: Duration, what = "duration"): number {
  let ms: number;
  if (typeof value === "number") {
    ms = value;
  } else if (typeof value === "string") {
    const m = PATTERN.exec(value);
    if (!m)
      throw new ValidationError(
        `${what}: "${value}" is not a duration (use e.g. 250, "250ms", "5s", "10m", "1h", "7d")`,
      );
    ms = Number(m[1]) * UNITS[m[2]!]!;
  } else {
    throw new ValidationError(
      `${what}: expected a number of milliseconds or a string like "5s", got ${typeof value}`,
    );
  }
  if (!Number.isFinite(ms) || ms < 0)
    throw new ValidationError(`${what}: ${String(value)} must be a finite, non-negative duration`);
  if (ms > MAX_MS) throw new ValidationError(`${what}: ${String(value)} is longer than 100 years`);
  return Math.round(ms);
}
