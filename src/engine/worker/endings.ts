import { encode } from "../../codec.js";
import { LockLostError, type RecordedError } from "../../api/errors.js";
import { recordError } from "../../api/recorded-errors.js";
import type { ActorRow } from "../../storage/rows.js";
import type { Storage } from "../../storage/storage.js";
import type { Wakeups } from "../../wakeups/wakeups.js";
import type { ActivationResult } from "../execution/activation.js";
import type { Execution } from "../execution/execution.js";
import type { LocalTimers } from "./local-timers.js";
import type { ParkedExecutions } from "./parked-executions.js";
import type { Slots } from "./slots.js";

type Log = (
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

export interface EndingsDeps {
  readonly storage: Storage;
  readonly wakeups: Wakeups;
  readonly slots: Slots;
  readonly parked: ParkedExecutions;
  readonly localTimers: LocalTimers;
  readonly workerId: string;
  readonly leaseMs: number;
  readonly maxPayloadBytes: number;
  readonly stats: { completed: number; failed: number };
  /** Claims runnable actors (a transient failure replays, a cancelled actor freed its slot). */
  claim(): void;
  log: Log;
  emit: (event: string, payload: Record<string, unknown>) => void;
  dbFailed(err: unknown, during: string, msg: string, fields?: Record<string, unknown>): void;
}

/** Output and error of a finished actor. */
type Outcome = { status: "completed"; output: Buffer } | { status: "failed"; error: RecordedError };

/**
 * What the worker does with an activation's result: park the execution, or write the
 * actor's end — completed, failed, cancelled, compensated first (sagas) — or hand it back
 * to be replayed.
 */
export class Endings {
  constructor(private readonly d: EndingsDeps) {}

  /**
   * Acts on `result`. Returns the actor's row when the next generation is to run here
   * (continue-as-new), else undefined.
   */
  async settle(exec: Execution, { ending, fence }: ActivationResult): Promise<ActorRow | undefined> {
    const { storage, slots } = this.d;
    switch (ending.kind) {
      case "parked":
        this.park(exec, ending.wait.seq, ending.wait.until);
        return;
      case "abandoned":
        slots.drop(exec);
        if (ending.reason !== "lock-lost") {
          await storage.actors.release(fence).catch(() => {});
          if (ending.reason === "transient") this.d.claim(); // replay from the journal: nothing half-done was committed
        }
        this.d.log("info", "execution abandoned", { actorId: exec.id, reason: ending.reason });
        return;
      case "recur": {
        // The next generation starts here, under the same lease, from an empty journal.
        slots.drop(exec);
        const row = await storage.actors.get(exec.id);
        if (row && row.leaseVersion === fence.leaseVersion && row.leaseOwner === this.d.workerId) return row;
        return;
      }
      case "cancel":
      case "compensate":
        await this.compensateAndFinish(exec, ending.kind === "cancel" ? null : undefined);
        return;
      case "returned": {
        if (exec.mode === "compensate") {
          await this.compensateAndFinish(exec, undefined);
          return;
        }
        let output: Buffer;
        try {
          output = encode(ending.value, {
            maxBytes: this.d.maxPayloadBytes,
            what: `result of actor "${exec.id}"`,
          });
        } catch (err) {
          if (exec.hasCompensations) await this.compensateAndFinish(exec, recordError(err));
          else await this.finishFailed(exec, err);
          return;
        }
        await this.finishWith(exec, { status: "completed", output });
        return;
      }
      case "threw":
      case "fatal":
        if (exec.mode === "compensate" || exec.hasCompensations) {
          await this.compensateAndFinish(exec, recordError(ending.error));
          return;
        }
        await this.finishFailed(exec, ending.error);
        return;
    }
  }

  /** Parked at a wait: keep the execution for an in-memory resume, and arm the wait's deadline. */
  private park(exec: Execution, seq: number, until: Date | undefined): void {
    // Superseded meanwhile (we claimed the actor again): the newer execution holds the slot.
    if (!this.d.slots.parked(exec)) return;
    // Stopped since it parked (a cancel, a newer claim): it can only be replayed.
    if (!exec.isParked) return;
    this.d.parked.add(exec);
    if (until) this.d.localTimers.arm(exec.id, seq, until);
  }

  /**
   * Saga ending: enter `compensating` (remembering the error), run the pending
   * compensations newest first, then finish as cancelled (if a cancel was requested) or
   * failed. `error` undefined = keep what the row has (a resumed compensation).
   */
  private async compensateAndFinish(exec: Execution, error: RecordedError | null | undefined): Promise<void> {
    const { storage, slots } = this.d;
    const fence = exec.fence;
    try {
      const row = await storage.actors.get(exec.id);
      if (!row || row.leaseVersion !== fence.leaseVersion) throw new LockLostError(exec.id);
      const cancelled = row.cancelRequestedAt !== null;
      if (
        row.status !== "compensating" &&
        (exec.hasCompensations || (await storage.sagas.hasPending(exec.id, exec.generation)))
      ) {
        await storage.sagas.beginCompensation(fence, this.d.leaseMs, error ?? null, exec.takeBuffered());
      }
      await exec.runCompensations();
      // From the table, not this run alone: a resumed compensation may have settled some before.
      const records = await storage.sagas.records(exec.id, exec.generation);
      const failed = records.filter((r) => r.status === "failed").map((r) => r.name);
      const skipped = records.filter((r) => r.status === "skipped").map((r) => r.name);
      const note =
        (failed.length ? ` (compensations that failed: ${failed.join(", ")})` : "") +
        (skipped.length ? ` (compensations that never ran: ${skipped.join(", ")})` : "");
      slots.drop(exec);
      if (cancelled) {
        await storage.cancellation.finishCancelled(fence, row.cancelReason, exec.takeBuffered(), note);
        this.d.wakeups.publish([{ kind: "finished", key: exec.id }]);
        this.d.emit("actor:cancelled", { actorId: exec.id, reason: row.cancelReason });
        this.d.claim();
        return;
      }
      const base = error ?? row.error ?? { name: "Error", message: "actor failed" };
      const recorded = note ? { ...base, message: base.message + note } : base;
      await this.finishWith(exec, { status: "failed", error: recorded });
    } catch (err) {
      slots.drop(exec);
      this.d.log("warn", "compensation interrupted (lease lost?); another worker resumes it", {
        actorId: exec.id,
        error: String(err),
      });
    }
  }

  private async finishFailed(exec: Execution, err: unknown): Promise<void> {
    await this.finishWith(exec, { status: "failed", error: recordError(err) });
  }

  private async finishWith(exec: Execution, outcome: Outcome): Promise<void> {
    this.d.slots.drop(exec);
    try {
      await this.d.storage.actors.finish(exec.fence, outcome, exec.takeBuffered());
    } catch (err) {
      // Not recorded: the actor is replayed after its lease (its journal has everything before the end).
      this.d.dbFailed(err, "finishing an actor", "could not record the end of an actor (lease lost?)", {
        actorId: exec.id,
      });
      return;
    }
    this.d.wakeups.publish([{ kind: "finished", key: exec.id }]);
    this.d.stats[outcome.status]++;
    this.d.emit(outcome.status === "completed" ? "actor:completed" : "actor:failed", {
      actorId: exec.id,
      ...(outcome.status === "failed" ? { error: outcome.error } : {}),
    });
    this.d.slots.freed();
  }
}
