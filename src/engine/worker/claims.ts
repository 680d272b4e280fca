import type { ActorRow } from "../../storage/rows.js";
import type { Storage } from "../../storage/storage.js";
import type { DatabaseOutage } from "../outage.js";
import type { Slots } from "./slots.js";

export interface ClaimsDeps {
  readonly storage: Storage;
  readonly slots: Slots;
  readonly outage: DatabaseOutage;
  readonly workerId: string;
  readonly leaseMs: number;
  readonly stopping: AbortSignal;
  /** The actor types this worker runs. */
  types(): string[];
  /** Runs a claimed actor. */
  launch(row: ActorRow): void;
  /** A round failed: the outage backoff, or a warning. */
  dbFailed(err: unknown, during: string, msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Claiming runnable actors: a round up to capacity (by polling, or when capacity comes
 * back), and one actor named by a wakeup. Either reserves the slots it may fill while its
 * query runs.
 */
export class Claims {
  private claiming = false;
  private claimAgain = false;
  private readonly claimingIds = new Set<string>();
  /** The claim round in flight, if any: it holds every free slot until its query returns. */
  loop: Promise<void> | undefined;

  constructor(private readonly d: ClaimsDeps) {}

  /** Claims runnable actors up to capacity; coalesces concurrent triggers into one more round. */
  kick(): void {
    const { storage, slots, outage } = this.d;
    if (this.d.stopping.aborted || outage.backingOff) return; // recovery claims
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    this.loop = (async () => {
      try {
        do {
          this.claimAgain = false;
          const free = slots.free;
          if (free <= 0) break;
          slots.reserve(free);
          let rows: ActorRow[];
          try {
            rows = await storage.actors.claimRunnable(this.d.workerId, this.d.leaseMs, free, this.d.types());
            outage.succeeded();
          } finally {
            slots.unreserve(free);
          }
          for (const row of rows) this.d.launch(row);
          if (rows.length === free) this.claimAgain = true; // there may be more
        } while (this.claimAgain && !this.d.stopping.aborted);
      } catch (err) {
        this.d.dbFailed(err, "claim", "claiming runnable actors failed");
      } finally {
        this.claiming = false;
      }
    })();
  }

  /** Claims one actor a wakeup named (it became runnable, or its timer fired here). */
  async claimOne(id: string): Promise<void> {
    const { storage, slots, outage } = this.d;
    if (slots.holds(id) || this.claimingIds.has(id)) return;
    if (outage.backingOff) return; // recovery claims every runnable actor
    if (slots.free <= 0) {
      slots.turnedAway("claim"); // a claim round once the reserved slots return finds it
      return;
    }
    this.claimingIds.add(id);
    let held = 1;
    slots.reserve(held);
    try {
      const row = await storage.actors.claim(id, this.d.workerId, this.d.leaseMs, this.d.types());
      slots.unreserve(held);
      held = 0;
      if (row) this.d.launch(row);
    } catch (err) {
      slots.unreserve(held);
      this.d.dbFailed(err, "claim", "claiming actor failed", { actorId: id });
    } finally {
      this.claimingIds.delete(id);
    }
  }
}
