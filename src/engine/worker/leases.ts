import { startInterval, type Timer } from "../../timers.js";
import type { Storage } from "../../storage/storage.js";
import type { DatabaseOutage } from "../outage.js";
import type { ParkedExecutions } from "./parked-executions.js";
import type { Slots } from "./slots.js";

export interface LeasesDeps {
  readonly storage: Storage;
  readonly slots: Slots;
  readonly parked: ParkedExecutions;
  readonly outage: DatabaseOutage;
  readonly workerId: string;
  readonly leaseMs: number;
  dbFailed(err: unknown, during: string, msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Keeping what the worker holds: every lease/3 the heartbeat refreshes the leases of the
 * running executions and the worker's registration, and picks up cancel requests for
 * them (their wakeup may have been lost). Cancel hints stop a running execution at once.
 */
export class Leases {
  private timer: Timer | undefined;
  private heartbeating = false;

  constructor(private readonly d: LeasesDeps) {}

  start(): void {
    this.timer = startInterval(() => void this.heartbeat(), Math.max(50, Math.floor(this.d.leaseMs / 3)));
  }

  stop(): void {
    this.timer?.clear();
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeating) return; // never pile refreshes up behind a slow one
    this.heartbeating = true;
    const { storage, slots } = this.d;
    try {
      await storage.actors.refreshLeases(this.d.workerId, this.d.leaseMs, slots.fences());
      await storage.workers.heartbeat(this.d.workerId);
      // Not gated by the backoff: at lease/3 it is the probe that notices the database is back.
      this.d.outage.succeeded();
      // Cancel requests whose wakeup was lost (Redis down) are found here.
      if (slots.runningCount > 0) {
        for (const id of await storage.cancellation.cancelRequestsFor(this.d.workerId))
          slots.execution(id)?.requestCancel();
      }
    } catch (err) {
      this.d.dbFailed(err, "heartbeat", "lease refresh failed");
    } finally {
      this.heartbeating = false;
    }
  }

  /** A hint is not the truth: act on a cancel only once the database has the request. */
  async onCancelHint(id: string): Promise<void> {
    const { slots, parked } = this.d;
    if (!slots.execution(id) && !parked.has(id)) return;
    try {
      const row = await this.d.storage.actors.get(id);
      if (!row?.cancelRequestedAt) return;
    } catch {
      return; // the heartbeat reads cancel requests from the database too
    }
    slots.execution(id)?.requestCancel();
    parked.delete(id);
  }
}
