import { ValidationError } from "./api/errors.js";

/**
 * The options argument of a public method: undefined → {}, a plain object as is, anything
 * else (null, a number, an array …) a ValidationError. Default parameters (`opts = {}`) only
 * cover undefined; `null` would otherwise be "Cannot read properties of null" deep inside.
 */
export function optionsArg<T extends object>(value: T | undefined | null, what: string): T {
  if (value === undefined) return {} as T;
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ValidationError(
      `${what} must be an object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`,
    );
  // A shallow copy, read once here: a getter or Proxy trap that throws is this argument's
  // fault (a typed error now), and later reads see the same values as the checks did.
  try {
    return { ...value };
  } catch (err) {
    throw new ValidationError(`${what} cannot be read: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
}

// Dates troupe stores or compares in timestamptz columns: years 1 to 9999. Postgres goes from
// 4713 BC to 294276 AD and JS Dates from 271821 BC to 275760 AD; outside 1..9999 the two
// disagree (time zone displacement, year-zero and interval overflow errors), and no real
// deadline or filter needs more.
const MIN_TIME = new Date("0001-01-01T00:00:00.000Z").getTime();
const MAX_TIME = new Date("9999-12-31T23:59:59.999Z").getTime();

/** A Date (or epoch ms when `numbers`) between years 1 and 9999, as epoch milliseconds. */
export function checkTime(value: unknown, what: string, opts: { numbers?: boolean } = {}): number {
  const ms =
    value instanceof Date ? value.getTime() : opts.numbers && typeof value === "number" ? value : undefined;
  if (ms === undefined)
    throw new ValidationError(`${what} must be a Date${opts.numbers ? " or epoch milliseconds" : ""}`);
  if (!Number.isFinite(ms)) throw new ValidationError(`${what} must be a valid Date`);
  if (ms < MIN_TIME || ms > MAX_TIME)
    throw new ValidationError(`${what} must be between the years 1 and 9999, got ${String(value)}`);
  return ms;
}
