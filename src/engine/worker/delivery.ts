import type { ActorRow, JournalEntry } from "../../storage/rows.js";
import type { Storage } from "../../storage/storage.js";
import type { DatabaseOutage } from "../outage.js";
import type { Slots } from "./slots.js";

export interface DeliveryDeps {
  readonly storage: Storage;
  readonly slots: Slots;
  readonly outage: DatabaseOutage;
  readonly workerId: string;
  readonly leaseMs: number;
  readonly stopping: AbortSignal;
  /** The claim round in flight: the sweep lets it give its slots back first. */
  readonly claims: { readonly loop: Promise<void> | undefined };
  readonly stats: { deliveries: number };
  types(): string[];
  /** Resumes a delivered actor here at once (it is claimed, with the entry that completes its wait). */
  launch(row: ActorRow, entry: JournalEntry): void;
  debugPoint(name: string, info: Record<string, unknown>): Promise<void>;
  dbFailed(err: unknown, during: string, msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Delivery to waiting actors: the sources (channels, mailboxes) that wakeups named are
 * "dirty" until a round delivers nothing more for them; rounds run one at a time, within
 * capacity. The sweep is the safety net for lost wakeups: every source with a waiting
 * subscriber and a pending message, also those parked on other workers.
 */
export class Delivery {
  private readonly dirtySources = new Set<string>();
  private running = false;
  /** The delivery round in flight, if any. */
  loop: Promise<void> | undefined;

  constructor(private readonly d: DeliveryDeps) {}

  /** True while a round runs. */
  get delivering(): boolean {
    return this.running;
  }

  /** A wakeup named a source with a new message. */
  onSource(key: string): void {
    this.dirtySources.add(key);
    if (!this.running) this.loop = this.drain();
  }

  /** Starts a round for the dirty sources, if any (and none runs). */
  deliverPending(): void {
    if (this.dirtySources.size > 0 && !this.running) this.loop = this.drain();
  }

  /** Delivers to waiting subscribers of the sources named by wakeups, in batches, one round at a time. */
  private async drain(): Promise<void> {
    const { slots } = this.d;
    this.running = true;
    try {
      while (this.dirtySources.size > 0 && !this.d.stopping.aborted && slots.free > 0) {
        const batch = [...this.dirtySources].slice(0, 500);
        for (const src of batch) this.dirtySources.delete(src);
        const n = await this.deliver(batch, true);
        // A round hands each waiting actor one message: more subscribers (or more messages
        // for a receiveAny waiter that just got one) may remain, and capacity may have cut it
        // short. Keep the sources until a round delivers nothing (or a slot frees), not the sweep.
        if (n > 0) for (const src of batch) this.dirtySources.add(src);
      }
      if (this.dirtySources.size > 0) slots.turnedAway("delivery");
    } finally {
      this.running = false;
    }
  }

  /**
   * Lock-first delivery for `sources`, resuming each delivered actor here at once. With
   * `parkedHereOnly`, actors parked on another live worker are left to it (the sweep
   * delivers them if that worker died).
   */
  async deliver(sources: readonly string[], parkedHereOnly: boolean): Promise<number> {
    const { slots, outage } = this.d;
    const free = slots.free;
    if (free <= 0 || this.d.stopping.aborted || outage.backingOff) return 0; // the sweep after recovery delivers
    let held = free;
    slots.reserve(held);
    try {
      const delivered = await this.d.storage.delivery.deliver(
        sources,
        this.d.workerId,
        this.d.leaseMs,
        free,
        parkedHereOnly,
        this.d.types(),
      );
      slots.unreserve(held);
      held = 0;
      outage.succeeded();
      this.d.stats.deliveries += delivered.length;
      for (const x of delivered) this.d.launch(x.row, x.entry);
      await this.d.debugPoint("deliver:done", {
        sources,
        delivered: delivered.map((x) => x.row.id),
        parkedHereOnly,
      });
      return delivered.length;
    } catch (err) {
      slots.unreserve(held); // once: a failure after the delivery (a debug point) must not return them twice
      this.d.dbFailed(err, "delivery", "delivery failed; the sweep will retry");
      return 0;
    }
  }

  /** Forced delivery for every source with a waiting subscriber and a pending message. */
  async sweep(): Promise<void> {
    // Let in-flight claims and deliveries give back the slots they hold first (see Worker.poll).
    await Promise.allSettled([this.d.claims.loop, this.loop]);
    if (this.d.stopping.aborted || this.d.slots.free <= 0) return;
    try {
      const sources = await this.d.storage.delivery.pendingSources(1000, this.d.types());
      if (sources.length > 0) await this.deliver(sources, false);
    } catch (err) {
      this.d.dbFailed(err, "sweep", "sweep for pending deliveries failed");
    }
  }
}
