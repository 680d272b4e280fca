import type { Wakeup } from "../wakeups/wakeups.js";

/**
 * The wakeups a write earned, published only once the write committed: a reader woken
 * before the commit would find nothing, wait a poll interval, and the hint would be wasted.
 * Every message writer goes through this — a write that is its own statement flushes right
 * after it returns (it has committed), a transactional step flushes after its commit, and a
 * step that rolls back drops what it collected.
 */
export class WakeAfterCommit {
  private readonly pending: Wakeup[] = [];

  /** The sources (channels, mailboxes) that got messages: their waiters and listeners are woken. */
  sources(sources: readonly string[]): this {
    for (const key of sources) this.pending.push({ kind: "channel", key });
    return this;
  }

  /** An ephemeral message: it exists only as its wakeup (messaging/ephemeral.ts). */
  add(wakeup: Wakeup): this {
    this.pending.push(wakeup);
    return this;
  }

  /** After the commit: publishes what was collected (nothing if nothing was). */
  flush(publish: ((wakeups: readonly Wakeup[]) => void) | undefined): void {
    const list = this.pending.splice(0);
    if (list.length > 0) publish?.(list);
  }
}
