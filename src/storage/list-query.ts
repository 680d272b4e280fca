import { ValidationError } from "../api/errors.js";
import { checkTime } from "../arguments.js";
import { checkJsonbText, checkName } from "../names.js";
import type { ActorStatus, ListFilter } from "../api/types.js";

// ListFilter lives in src/api/types.ts; re-exported for actor-store, troupe.ts and the dashboard.
export type { ListFilter };

const STATUSES: ActorStatus[] = ["running", "waiting", "completed", "failed", "cancelled", "compensating"];
// A path segment is an identifier-like key or an array index. Values travel as parameters,
// and so do the segments themselves (as a text[]): nothing a caller passes becomes SQL text.
const SEGMENT = /^(?:[A-Za-z_][A-Za-z0-9_-]{0,63}|\d{1,6})$/;

export function parsePath(path: string): string[] {
  if (typeof path !== "string" || path.length === 0 || path.length > 256) {
    throw new ValidationError(
      `input filter path ${JSON.stringify(path)} must be a non-empty string of at most 256 characters`,
    );
  }
  const parts = path.split(".");
  for (const p of parts) {
    if (!SEGMENT.test(p)) {
      throw new ValidationError(
        `input filter path "${path}": segment ${JSON.stringify(p)} is not a key (letters, digits, _ and -) or an array index`,
      );
    }
  }
  return parts;
}

export function encodeCursor(startedKey: string, id: string): string {
  return Buffer.from(JSON.stringify([startedKey, id]), "utf8").toString("base64url");
}

// A cursor is base64url of JSON [startedKey, id], where startedKey is `started_at::text` (ISO
// DateStyle, the session's time zone as an offset) and id an actor id. A forged one must fail
// here, not as a Postgres cast error: the key is checked field by field against the ranges
// Postgres accepts, the id against the rules for actor ids, and the cursor must re-encode to
// exactly itself. The longest real cursor (a 255-character id of 3-byte characters) is
// about 1,100 characters.
const MAX_CURSOR = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const STARTED_KEY =
  /^(\d{4}|[1-9]\d{4,5})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function isStartedKey(key: string): boolean {
  const m = STARTED_KEY.exec(key);
  if (!m) return false;
  // Groups: year, month, day, hour, minute, second, sign, offset hours, minutes, seconds.
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, , oh = 0, om = 0, os = 0] = m
    .slice(1)
    .map((x) => Number(x ?? 0));
  return (
    year >= 1 &&
    year <= 294275 && // timestamptz ends in 294276 AD
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month) &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    oh <= 15 && // Postgres rejects a displacement of 16 hours or more
    om <= 59 &&
    os <= 59
  );
}

const NOT_A_CURSOR = "cursor is not one that list() returned";

function decodeCursor(c: unknown): [string, string] {
  if (typeof c !== "string" || c.length === 0 || c.length > MAX_CURSOR || !BASE64URL.test(c))
    throw new ValidationError(NOT_A_CURSOR);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(c, "base64url").toString("utf8"));
  } catch {
    throw new ValidationError(NOT_A_CURSOR);
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "string" || typeof v[1] !== "string")
    throw new ValidationError(NOT_A_CURSOR);
  const [startedKey, id] = v as [string, string];
  if (!isStartedKey(startedKey) || encodeCursor(startedKey, id) !== c)
    throw new ValidationError(NOT_A_CURSOR);
  try {
    checkName(id, "cursor id", 255);
  } catch {
    throw new ValidationError(NOT_A_CURSOR);
  }
  return [startedKey, id];
}

/** Builds the WHERE clause and parameters for list(); newest first, keyset-paginated. */
export function buildListQuery(f: ListFilter): { where: string; params: unknown[]; limit: number } {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.status !== undefined) {
    const list: unknown[] = Array.isArray(f.status) ? f.status : [f.status];
    for (const s of list)
      if (!STATUSES.includes(s as ActorStatus))
        throw new ValidationError(`status must be one of ${STATUSES.join(", ")}`);
    where.push(`status = ANY(${p(list)}::text[])`);
  }
  if (f.actor !== undefined) {
    checkName(f.actor, "actor filter");
    where.push(`actor = ${p(f.actor)}`);
  }
  if (f.idContains !== undefined) {
    checkName(f.idContains, "idContains", 255);
    // strpos, not LIKE: the caller's text is matched literally (% and _ mean nothing).
    where.push(`strpos(id, ${p(f.idContains)}) > 0`);
  }
  for (const [key, v] of [
    ["startedAfter", f.startedAfter],
    ["startedBefore", f.startedBefore],
  ] as const) {
    if (v === undefined) continue;
    checkTime(v, key);
    where.push(`started_at ${key === "startedAfter" ? ">" : "<"} ${p(v)}`);
  }
  if (f.input !== undefined) {
    if (typeof f.input !== "object" || f.input === null || Array.isArray(f.input)) {
      throw new ValidationError('input filter must be an object of { "path.to.field": value }');
    }
    for (const [path, value] of Object.entries(f.input)) {
      const parts = parsePath(path);
      let json: string;
      try {
        json = JSON.stringify(value);
      } catch {
        throw new ValidationError(`input filter value for "${path}" must be JSON`);
      }
      if (json === undefined) throw new ValidationError(`input filter value for "${path}" must be JSON`);
      checkJsonbText(JSON.parse(json), `input filter value for "${path}"`);
      where.push(`input_json #> ${p(parts)}::text[] = ${p(json)}::jsonb`);
    }
  }
  const limit = f.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new ValidationError("limit must be an integer from 1 to 1000");
  if (f.cursor !== undefined) {
    const [startedKey, id] = decodeCursor(f.cursor);
    where.push(`(started_at, id) < (${p(startedKey)}::timestamptz, ${p(id)})`);
  }
  return { where: where.length ? `WHERE ${where.join(" AND ")}` : "", params, limit };
}
