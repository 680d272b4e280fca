/**
 * Flag and argument values of the `troupe` commands: dates, durations, JSON, limits. Each
 * check throws a ValidationError naming the flag, so a bad value exits 2 with a reason.
 */
import { toMillis } from "../duration.js";
import { ValidationError } from "../api/errors.js";

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))?)?$/i;

/** A strict ISO 8601 date or date-time; UTC when it carries no offset. */
function parseDate(text: string, flag: string): Date | undefined {
  const m = ISO_DATE.exec(text.trim());
  if (!m) return undefined;
  const [y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0] = m.slice(1, 7).map((x) => Number(x ?? 0));
  const ms = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const offset = m[9] ? (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) : 0;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, ms);
  // Date rolls 2024-02-30 over into March: a field out of range is an error instead.
  if (
    date.getUTCFullYear() !== y ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== sec ||
    Number(m[10] ?? 0) > 23 ||
    Number(m[11] ?? 0) > 59
  )
    throw new ValidationError(`--${flag}: "${text}" is not a valid date`);
  return new Date(date.getTime() - offset * 60_000);
}

export function dateFlag(text: string | undefined, flag: string): Date | undefined {
  if (text === undefined) return undefined;
  const date = parseDate(text, flag);
  if (!date)
    throw new ValidationError(
      `--${flag}: "${text}" is not an ISO 8601 date (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)`,
    );
  return date;
}

/** --since: an ISO date, or a duration before now ("1h", "7d"). */
export function sinceFlag(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const date = parseDate(text, "since");
  if (date) return date;
  let ms: number;
  try {
    ms = toMillis(text, "--since");
  } catch {
    throw new ValidationError(
      `--since: "${text}" is neither an ISO 8601 date (2024-05-01T12:00:00Z) nor a duration (30s, 15m, 1h, 7d)`,
    );
  }
  return new Date(Date.now() - ms);
}

/** --input PATH=JSON, repeatable: the list() input filter. */
export function inputFlags(pairs: string[] | undefined): Record<string, unknown> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const filter: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ValidationError(`--input: "${pair}" is not PATH=JSON (e.g. customer.id='"c-1"')`);
    const path = pair.slice(0, eq);
    const text = pair.slice(eq + 1);
    if (Object.hasOwn(filter, path)) throw new ValidationError(`--input: path "${path}" is given twice`);
    try {
      filter[path] = JSON.parse(text);
    } catch {
      throw new ValidationError(
        `--input ${path}=${text}: the value must be JSON (a string needs quotes: ${path}='"${text}"')`,
      );
    }
  }
  return filter;
}

export function limitFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text)) throw new ValidationError(`--limit: "${text}" is not a whole number`);
  return Number(text);
}

export function parseJson(text: string | undefined, what: string): unknown {
  if (text === undefined) throw new ValidationError(`${what} is required`);
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`${what} must be JSON, got: ${text}`);
  }
}
