import { ValidationError } from "./api/errors.js";

/** A parsed five-field cron expression (minute hour day-of-month month day-of-week), in UTC. */
export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  daysRestricted: boolean;
  weekdaysRestricted: boolean;
}

const FIELDS: [string, number, number][] = [
  ["minute", 0, 59],
  ["hour", 0, 23],
  ["day of month", 1, 31],
  ["month", 1, 12],
  ["day of week", 0, 7],
];

function field(text: string, [what, lo, hi]: [string, number, number]): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new ValidationError(`cron ${what}: "${part}" is not a number, range, list or */step`);
    const from = m[1] === "*" ? lo : Number(m[2]);
    const to = m[1] === "*" ? hi : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? hi : from;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (from < lo || to > hi || from > to || step < 1)
      throw new ValidationError(`cron ${what}: "${part}" is outside ${lo}-${hi}`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

export function parseCron(expr: string): Cron {
  if (typeof expr !== "string") throw new ValidationError("cron must be a string");
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5)
    throw new ValidationError(`cron "${expr}" needs 5 fields: minute hour day-of-month month day-of-week`);
  const [mi, h, d, mo, w] = parts.map((p, i) => field(p, FIELDS[i]!));
  if (w!.has(7)) w!.add(0); // 7 is Sunday too
  return {
    minutes: mi!,
    hours: h!,
    days: d!,
    months: mo!,
    weekdays: w!,
    daysRestricted: parts[2] !== "*",
    weekdaysRestricted: parts[4] !== "*",
  };
}

/** The first minute strictly after `after` that matches (UTC). */
export function nextCronTime(c: Cron, after: Date): Date {
  const t = new Date(after.getTime());
  t.setUTCSeconds(0, 0);
  t.setUTCMinutes(t.getUTCMinutes() + 1);
  // At most ~4 years of minutes: covers Feb 29 schedules; bail out on impossible ones (e.g. Feb 31).
  for (let i = 0; i < 4 * 366 * 24 * 60; i++) {
    const dayOk =
      c.daysRestricted && c.weekdaysRestricted
        ? c.days.has(t.getUTCDate()) || c.weekdays.has(t.getUTCDay())
        : c.days.has(t.getUTCDate()) && c.weekdays.has(t.getUTCDay());
    if (!c.months.has(t.getUTCMonth() + 1) || !dayOk) {
      t.setUTCHours(0, 0, 0, 0);
      t.setUTCDate(t.getUTCDate() + 1);
      continue;
    }
    if (!c.hours.has(t.getUTCHours())) {
      t.setUTCMinutes(0, 0, 0);
      t.setUTCHours(t.getUTCHours() + 1);
      continue;
    }
    if (c.minutes.has(t.getUTCMinutes())) return t;
    t.setUTCMinutes(t.getUTCMinutes() + 1);
  }
  throw new ValidationError("cron expression never matches");
}
