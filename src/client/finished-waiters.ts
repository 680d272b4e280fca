/**
 * Waiters for "an actor finished" in this process: ActorRef.result() sleeps on one between
 * reads instead of polling at a fixed rate. A "finished" wakeup (or the timeout) ends the
 * sleep; the caller then reads the actor again, so a lost wakeup costs only the timeout.
 */
export class FinishedWaiters {
  private readonly byActor = new Map<string, Set<() => void>>();

  /** Resolves on notify(id), release(), or after `ms`, whichever comes first. */
  wait(id: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.byActor.get(id);
      if (!set) this.byActor.set(id, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.byActor.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  /** A "finished" wakeup for `id` arrived. */
  notify(id: string): void {
    const set = this.byActor.get(id);
    if (set) for (const w of [...set]) w();
  }

  /** Ends every wait (the Troupe stopped): the callers read once more and see NOT_STARTED. */
  release(): void {
    for (const set of this.byActor.values()) for (const w of set) w();
    this.byActor.clear();
  }
}
