import { decode } from "../codec.js";
import { nextCronTime, parseCron } from "../cron.js";
import type { ScheduleRow } from "../storage/schedule-store.js";
import type { ActorRow } from "../storage/rows.js";
import type { Storage } from "../storage/storage.js";

/** Did the run report that it found nothing to do (`{ idle: true }`), or not succeed at all? */
function quietRun(run: ActorRow | null): boolean {
  if (!run) return false; // removed by retention: assume it worked
  if (run.status !== "completed") return true;
  const out = decode<unknown>(run.output);
  return typeof out === "object" && out !== null && (out as { idle?: unknown }).idle === true;
}

/** When the next run starts, and the interval to remember (adaptive backoff for interval schedules). */
export function nextRun(
  s: ScheduleRow,
  run: ActorRow | null,
  now = new Date(),
): { delayMs: number; intervalMs: number | null } {
  if (s.cron)
    return { delayMs: nextCronTime(parseCron(s.cron), now).getTime() - now.getTime(), intervalMs: null };
  const base = s.everyMs!;
  const max = s.maxIntervalMs ?? base * 16;
  const current = s.currentIntervalMs ?? base;
  const interval = quietRun(run) ? Math.min(Math.round(current * s.backoffFactor), max) : base;
  return { delayMs: interval, intervalMs: interval };
}

/** Leader work: start due runs, and plan the next run of schedules whose run finished. Returns started actor ids. */
export async function advanceSchedules(storage: Storage): Promise<string[]> {
  const started = await storage.schedules.startDue(100);
  for (const { schedule, run } of await storage.schedules.finishedRuns(100)) {
    const { delayMs, intervalMs } = nextRun(schedule, run);
    await storage.schedules.setNext(schedule.name, schedule.lastActorId, intervalMs, delayMs);
  }
  return started;
}
