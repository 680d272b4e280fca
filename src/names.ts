import { ValidationError } from "./api/errors.js";

const MAX_NAME = 200;
// Printable, no whitespace or control characters: ids and names end up in logs, URLs and channel keys.
const PRINTABLE = /^[^\s\p{Cc}]+$/u;
// With the u flag a paired surrogate is one code point: \p{Cs} matches only a lone half,
// which has no UTF-8 form (Postgres refuses it: 22021 in text, 22P02 in jsonb).
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why a string cannot be stored in a Postgres text or jsonb column, or undefined when it can:
 * text refuses NUL (22021) and every UTF-8 column a lone surrogate (which has no UTF-8 form).
 */
export function unstorableText(value: string): string | undefined {
  if (value.includes("\u0000")) return "a NUL character";
  if (LONE_SURROGATE.test(value)) return "a lone surrogate (not valid UTF-16)";
  return undefined;
}

/** Validates a user-supplied identifier-like string (actor id, actor name, step name …). */
export function checkName(value: unknown, what: string, max = MAX_NAME): string {
  if (typeof value !== "string")
    throw new ValidationError(`${what} must be a string, got ${value === null ? "null" : typeof value}`);
  if (value.length === 0) throw new ValidationError(`${what} must not be empty`);
  if (value.length > max)
    throw new ValidationError(`${what} is ${value.length} characters long; the limit is ${max}`);
  if (!PRINTABLE.test(value))
    throw new ValidationError(`${what} ${JSON.stringify(value)} contains whitespace or control characters`);
  if (LONE_SURROGATE.test(value)) throw new ValidationError(`${what} contains a lone surrogate`);
  return value;
}

/** Step names may contain spaces ("charge card"): only length and control characters are checked. */
export function checkLabel(value: unknown, what: string, max = MAX_NAME): string {
  if (typeof value !== "string") throw new ValidationError(`${what} must be a string, got ${typeof value}`);
  if (value.length === 0) throw new ValidationError(`${what} must not be empty`);
  if (value.length > max)
    throw new ValidationError(`${what} is ${value.length} characters long; the limit is ${max}`);
  if (/\p{Cc}/u.test(value)) throw new ValidationError(`${what} contains control characters`);
  if (LONE_SURROGATE.test(value)) throw new ValidationError(`${what} contains a lone surrogate`);
  return value;
}

/** Free text stored as is (a cancel reason): any characters a text column can hold, up to `max`. */
export function checkText(value: unknown, what: string, max: number): string {
  if (typeof value !== "string") throw new ValidationError(`${what} must be a string, got ${typeof value}`);
  if (value.length > max)
    throw new ValidationError(`${what} is ${value.length} characters long; the limit is ${max}`);
  const problem = unstorableText(value);
  if (problem) throw new ValidationError(`${what} contains ${problem}`);
  return value;
}

/**
 * Deepest nesting a stored value may have. Every walk over a value (the codec's, JSON's,
 * msgpack's) recurses; this is far below the stack limit, so a hostile value is a typed
 * error, never a "Maximum call stack size exceeded".
 */
export const MAX_DEPTH = 256;

/** A JSON value bound for a jsonb column: no NUL and no lone surrogate in any key or string (22P05 / 22P02). */
export function checkJsonbText(v: unknown, what: string, depth = 0): void {
  if (depth > MAX_DEPTH) throw new ValidationError(`${what} is nested more than ${MAX_DEPTH} levels deep`);
  if (typeof v === "string") {
    const problem = unstorableText(v);
    if (problem) throw new ValidationError(`${what} contains ${problem}, which a jsonb column cannot hold`);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => checkJsonbText(x, `${what}[${i}]`, depth + 1));
  } else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      const problem = unstorableText(k);
      if (problem)
        throw new ValidationError(`${what} has a key with ${problem}, which a jsonb column cannot hold`);
      checkJsonbText(x, `${what}.${k}`, depth + 1);
    }
  }
}
