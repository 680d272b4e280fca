import { ValidationError } from "./errors.js";

const MAX_NAME = 200;
// Printable, no whitespace or control characters: ids and names end up in logs, URLs and channel keys.
const PRINTABLE = /^[^\s\p{Cc}]+$/u;

/** Validates a user-supplied identifier-like string (actor id, actor name, step name …). */
export function checkName(value: unknown, what: string, max = MAX_NAME): string {
  if (typeof value !== "string")
    throw new ValidationError(`${what} must be a string, got ${value === null ? "null" : typeof value}`);
  if (value.length === 0) throw new ValidationError(`${what} must not be empty`);
  if (value.length > max)
    throw new ValidationError(`${what} is ${value.length} characters long; the limit is ${max}`);
  if (!PRINTABLE.test(value))
    throw new ValidationError(`${what} "${value}" contains whitespace or control characters`);
  return value;
}

/** Step names may contain spaces ("charge card"): only length and control characters are checked. */
export function checkLabel(value: unknown, what: string, max = MAX_NAME): string {
  if (typeof value !== "string") throw new ValidationError(`${what} must be a string, got ${typeof value}`);
  if (value.length === 0) throw new ValidationError(`${what} must not be empty`);
  if (value.length > max)
    throw new ValidationError(`${what} is ${value.length} characters long; the limit is ${max}`);
  if (/\p{Cc}/u.test(value)) throw new ValidationError(`${what} contains control characters`);
  return value;
}
