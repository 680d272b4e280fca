import type { TroupeError } from "../../api/errors.js";
import type { WaitSpec } from "../../storage/actor-store.js";
import type { Fence } from "../../storage/rows.js";

/** How an activation ended; the worker's next move depends on it alone. */
export type ActivationEnding =
  /** The actor function returned: finish (or, in compensation mode, compensate). */
  | { kind: "returned"; value: unknown }
  /** It threw: fail the actor, compensating first if it registered compensations. */
  | { kind: "threw"; error: unknown }
  /** A wait was registered: keep the execution parked, arm a local timer for `wait.until`. */
  | { kind: "parked"; wait: WaitSpec }
  /** Continue-as-new committed: start the next generation under the same lease. */
  | { kind: "recur" }
  /** A cancel request stopped it: compensate, then finish as cancelled. */
  | { kind: "cancel" }
  /** Compensation mode: the replay reached the end of the journal, the compensations run next. */
  | { kind: "compensate" }
  /** Stopped without an ending of its own; it is replayed (after its lease, if it was lost). */
  | { kind: "abandoned"; reason: "lock-lost" | "stopping" | "transient" }
  /** The code no longer matches its journal (non-determinism): fail the actor. */
  | { kind: "fatal"; error: TroupeError };

/**
 * What one activation (a run from start or resume to the next wait, the end or a failure)
 * did, returned to the worker as a value: the worker acts on it (parks the execution and
 * arms its timer, finishes, compensates, replays) and the execution never calls back up.
 *
 * Today every operation commits on its own as it runs (write-through), so the result
 * carries only the ending and the lease it was reached under; the few values recorded
 * after the last write (now/random/uuid…) are taken by the worker's final write through
 * Execution.takeBuffered(). One commit per activation (the next issue) adds the buffered
 * work here instead:
 *   entries: JournalEntry[] — every journal entry of the activation, in journal order;
 *   effects: the messages, subscriptions, memberships, outbox events and spawned actors
 *            the activation produced, with the wakeups to publish after the commit;
 * and the worker commits entries + effects + the ending (the wait, the finish, the
 * compensation's start) in one transaction under `fence`, then publishes the wakeups.
 */
export interface ActivationResult {
  readonly ending: ActivationEnding;
  /** The lease the activation ran under: the ending is written under it. */
  readonly fence: Fence;
}

/**
 * The boundary of one activation: one per run() (a resume opens a new one), settled by the
 * first ending reported for it. Reports that come later — an operation the actor did not
 * await registering a wait while the ending is being written, a cancel arriving then —
 * belong to an activation that is over and change nothing.
 */
export class Activation {
  private settle!: (e: ActivationEnding) => void;
  private over = false;
  readonly ended = new Promise<ActivationEnding>((resolve) => (this.settle = resolve));

  /** Reports an ending; the first one counts. */
  end(e: ActivationEnding): void {
    if (this.over) return;
    this.over = true;
    this.settle(e);
  }
}
