import { decode } from "../codec.js";
import { nextCronTime, parseCron } from "../cron.js";
import type { NextRun, ScheduleRow } from "../storage/schedule-store.js";
import type { ActorRow } from "../storage/rows.js";
import type { Storage } from "../storage/storage.js";

/** Did the run report that it found nothing to do (`{ idle: true }`), or not succeed at all? */
function quietRun(run: ActorRow | null): boolean {
  if (!run) return false; // removed by retention: assume it worked
  if (run.status !== "completed") return true;
  const out = decode<unknown>(run.output);
  return typeof out === "object" && out !== null && (out as { idle?: unknown }).idle === true;
}

/**
 * When the next run starts, and the interval to remember (adaptive backoff for interval
 * schedules). A cron run is an absolute time (the matching minute, however late the write
 * lands); an interval is a delay counted from the database's clock at the write.
 */
export function nextRun(
  s: ScheduleRow,
  run: ActorRow | null,
  now = new Date(),
): { next: NextRun; intervalMs: number | null } {
  if (s.cron) return { next: { at: nextCronTime(parseCron(s.cron), now) }, intervalMs: null };
  const base = s.everyMs!;
  const max = s.maxIntervalMs ?? base * 16;
  const current = s.currentIntervalMs ?? base;
  const interval = quietRun(run) ? Math.min(Math.round(current * s.backoffFactor), max) : base;
  return { next: { delayMs: interval }, intervalMs: interval };
}

/** Leader work: start due runs, and plan the next run of schedules whose run finished. Returns started actor ids. */
export async function advanceSchedules(storage: Storage): Promise<string[]> {
  const started = await storage.schedules.startDue(100);
  for (const { schedule, run } of await storage.schedules.finishedRuns(100)) {
    const { next, intervalMs } = nextRun(schedule, run);
    await storage.schedules.setNext(schedule.name, schedule.lastActorId, intervalMs, next);
  }
  return started;
}
