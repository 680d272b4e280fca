import type { Fence } from "../../storage/rows.js";
import type { Execution } from "../execution/execution.js";

/** What the worker does when capacity comes back. */
export interface WhenFreed {
  /** Claims runnable actors (the claim loop coalesces concurrent triggers). */
  claim(): void;
  /** True while a delivery round runs: it sees freed slots itself. */
  delivering(): boolean;
  /** Starts a delivery round for the sources that wakeups named, if any wait. */
  deliverPending(): void;
}

/**
 * A worker's capacity, `concurrency` slots, each held by a running execution, an actor
 * being started, or a reservation: a claim or delivery query in flight holds the slots it
 * may fill until it returns, so concurrency is a hard limit. Every change of capacity goes
 * through here, and so does what follows a slot freeing up: claiming again and resuming
 * deliveries that capacity held back, including wakeups turned away meanwhile.
 */
export class Slots {
  private readonly running = new Map<string, Execution>();
  private readonly starting = new Set<string>();
  private reserved = 0;
  /**
   * A wakeup (actor or channel) found no free slot while some were only reserved: act on
   * it when the reservation returns, since the query holding them may not have seen it.
   * (With every slot running, the execution that parks or ends next frees one.)
   */
  private claimTurnedAway = false;
  private deliveryTurnedAway = false;

  constructor(
    private readonly capacity: number,
    private readonly stopping: AbortSignal,
    private readonly whenFreed: WhenFreed,
  ) {}

  get free(): number {
    return this.capacity - this.running.size - this.starting.size - this.reserved;
  }

  /** Running or being started here. */
  holds(id: string): boolean {
    return this.running.has(id) || this.starting.has(id);
  }

  execution(id: string): Execution | undefined {
    return this.running.get(id);
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** The leases the running executions hold (for the heartbeat). */
  fences(): Fence[] {
    return [...this.running.values()].map((e) => e.fence);
  }

  executions(): Execution[] {
    return [...this.running.values()];
  }

  reserve(n: number): void {
    this.reserved += n;
  }

  /** Gives reserved slots back; wakeups turned away meanwhile get their turn now. */
  unreserve(n: number): void {
    this.reserved -= n;
    if (n <= 0 || this.free <= 0 || !(this.claimTurnedAway || this.deliveryTurnedAway)) return;
    queueMicrotask(() => {
      if (this.stopping.aborted) return;
      // Deliveries first: a claim round reserves every free slot while its query runs.
      if (this.deliveryTurnedAway && !this.whenFreed.delivering()) {
        this.deliveryTurnedAway = false;
        this.whenFreed.deliverPending();
      }
      if (this.claimTurnedAway) {
        this.claimTurnedAway = false;
        this.whenFreed.claim();
      }
    });
  }

  /** No free slot for a wakeup: if some are only reserved, act on it once they return. */
  turnedAway(kind: "claim" | "delivery"): void {
    if (this.reserved <= 0) return;
    if (kind === "claim") this.claimTurnedAway = true;
    else this.deliveryTurnedAway = true;
  }

  /** A claimed actor is being started (resumed in memory or replayed). */
  startFor(id: string): void {
    this.starting.add(id);
  }

  /** Starting it ended (it runs, or it was handed back). */
  started(id: string): void {
    this.starting.delete(id);
  }

  /** `exec` runs: its slot moves from starting to running. */
  run(exec: Execution): void {
    this.running.set(exec.id, exec);
    this.starting.delete(exec.id);
  }

  /** Forgets an execution as running, unless a newer one for the same actor already took its place. */
  drop(exec: Execution): void {
    if (this.running.get(exec.id) === exec) this.running.delete(exec.id);
  }

  /**
   * `exec` parked: its slot frees. False if a newer execution of the actor had taken its
   * place meanwhile (nothing to free). Claims again only if the worker had been full: the
   * common park must not cost a query.
   */
  parked(exec: Execution): boolean {
    if (this.running.get(exec.id) !== exec) return false;
    this.running.delete(exec.id);
    if (this.free === 1) queueMicrotask(() => this.freed());
    else if (!this.whenFreed.delivering()) this.whenFreed.deliverPending();
    return true;
  }

  /** An execution ended and its slot is free: claim more work, resume deliveries held back by capacity. */
  freed(): void {
    if (this.stopping.aborted) return;
    this.whenFreed.claim();
    if (!this.whenFreed.delivering()) this.whenFreed.deliverPending();
  }

  /** Shutdown: forget the running executions (their leases were handed back). */
  clear(): void {
    this.running.clear();
  }

  snapshot() {
    return {
      running: this.running.size,
      // free = concurrency − running − starting − reserved
      starting: this.starting.size,
      reserved: this.reserved,
      free: this.free,
    };
  }
}
