import { startTimeout, type Timer } from "../../timers.js";
import type { Storage } from "../../storage/storage.js";
import type { Wakeups } from "../../wakeups/wakeups.js";

/** Waits set locally are fired by a local timer when due within this window; the leader's poll is the backstop. */
const LOCAL_TIMER_WINDOW_MS = 10 * 60_000;

export interface LocalTimersDeps {
  readonly storage: Storage;
  readonly wakeups: Wakeups;
  readonly stopping: AbortSignal;
  /** Claims the actor whose timer fired (it is runnable now). */
  claimOne(id: string): Promise<void>;
  dbFailed(err: unknown, during: string, msg: string, fields?: Record<string, unknown>): void;
}

/**
 * In-process timers for the deadlines of waits parked here (sleep, receive timeouts), so a
 * short sleep ends on time instead of at the leader's next poll, which still fires every
 * due timer (this process may die). One timer per actor: its current wait.
 */
export class LocalTimers {
  private readonly timers = new Map<string, Timer>();

  constructor(private readonly d: LocalTimersDeps) {}

  arm(actorId: string, seq: number, until: Date): void {
    const delay = until.getTime() - Date.now();
    if (delay > LOCAL_TIMER_WINDOW_MS) return;
    this.timers.get(actorId)?.clear();
    const t = startTimeout(
      () => {
        this.timers.delete(actorId);
        void this.fire(actorId, seq);
      },
      Math.max(0, delay),
    );
    t.unref();
    this.timers.set(actorId, t);
  }

  clear(): void {
    for (const t of this.timers.values()) t.clear();
    this.timers.clear();
  }

  private async fire(actorId: string, seq: number): Promise<void> {
    if (this.d.stopping.aborted) return;
    try {
      if (await this.d.storage.timers.fire(actorId, seq)) {
        this.d.wakeups.publish([{ kind: "actor", key: actorId }]);
        await this.d.claimOne(actorId);
      } else {
        // Not fired: completed by someone else, or this timer was armed for an earlier wait at
        // the same position whose successor is due later: follow that one. (A database clock
        // behind ours is left to the leader's poll rather than retried in a loop.)
        const due = await this.d.storage.timers.dueAt(actorId, seq);
        if (due && due.getTime() > Date.now()) this.arm(actorId, seq, due);
      }
    } catch (err) {
      this.d.dbFailed(err, "timer", "firing a timer failed; the leader will retry", { actorId });
    }
  }
}
