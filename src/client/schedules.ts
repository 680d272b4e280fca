import { checkTime, optionsArg } from "../arguments.js";
import { encode } from "../codec.js";
import { nextCronTime, parseCron } from "../cron.js";
import { toMillis } from "../duration.js";
import { ValidationError } from "../api/errors.js";
import { checkName } from "../names.js";
import type { ScheduleRow } from "../storage/schedule-store.js";
import type { ScheduleInfo, ScheduleOptions } from "../api/types.js";
import type { ClientDeps } from "./troupe-deps.js";

function scheduleInfo(r: ScheduleRow): ScheduleInfo {
  return {
    name: r.name,
    actor: r.actor,
    cron: r.cron,
    everyMs: r.everyMs,
    currentIntervalMs: r.currentIntervalMs,
    nextRunAt: r.nextRunAt,
    lastRun: r.lastActorId,
    runs: r.runs,
  };
}

/** Recurring actors: defining, removing and listing schedules (the leader runs them). */
export class Schedules {
  constructor(private readonly c: ClientDeps) {}

  /** See Troupe.schedule. */
  async schedule(name: string, options: ScheduleOptions): Promise<ScheduleInfo> {
    const storage = this.c.storage("schedule");
    checkName(name, "schedule name", 150);
    if (options === undefined) throw new ValidationError("schedule options are required");
    const opts = optionsArg(options, "schedule options");
    const def = this.c.actors.resolve(opts.actor, "schedule()");
    if ((opts.every === undefined) === (opts.cron === undefined))
      throw new ValidationError("give exactly one of every or cron");
    const everyMs = opts.every === undefined ? null : toMillis(opts.every, "every");
    if (everyMs !== null && everyMs < 10) throw new ValidationError("every must be at least 10ms");
    const cron = opts.cron === undefined ? null : opts.cron;
    const parsed = cron === null ? null : parseCron(cron);
    const maxIntervalMs = opts.maxInterval === undefined ? null : toMillis(opts.maxInterval, "maxInterval");
    const backoffFactor = opts.backoffFactor ?? 2;
    if (typeof backoffFactor !== "number" || !(backoffFactor >= 1) || backoffFactor > 100) {
      throw new ValidationError("backoffFactor must be a number from 1 to 100");
    }
    if (opts.startAt !== undefined) checkTime(opts.startAt, "startAt");
    const input = encode(opts.input, { maxBytes: this.c.maxPayloadBytes, what: "schedule input" });
    const nextRunAt = opts.startAt ?? (parsed ? nextCronTime(parsed, new Date()) : new Date());
    this.c.actors.ensure(def); // only once everything is valid: a failing schedule changes nothing
    const row = await storage.schedules.upsert({
      name,
      actor: def.name,
      input,
      cron,
      everyMs,
      maxIntervalMs,
      backoffFactor,
      nextRunAt,
    });
    return scheduleInfo(row);
  }

  /** See Troupe.unschedule. */
  async unschedule(name: string): Promise<boolean> {
    checkName(name, "schedule name", 150);
    return this.c.storage("unschedule").schedules.remove(name);
  }

  /** See Troupe.schedules. */
  async list(): Promise<ScheduleInfo[]> {
    return (await this.c.storage("schedules").schedules.list()).map(scheduleInfo);
  }
}
