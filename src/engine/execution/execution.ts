import type { ActorDefinition } from "../../actor.js";
import { decode, encode } from "../../codec.js";
import type { ContextPropagation, ContextSnapshot } from "../../context-propagation.js";
import { LockLostError, NonDeterminismError, ValidationError } from "../../api/errors.js";
import { errorFromRecord, recordError } from "../../api/recorded-errors.js";
import { CancelRequested, type WaitSpec } from "../../storage/actor-store.js";
import type { ActorRow, Fence, JournalEntry } from "../../storage/rows.js";
import type { Storage } from "../../storage/storage.js";
import type { Wakeup } from "../../wakeups/wakeups.js";
import type { ActorContext } from "../../api/actor-context.js";
import { JournalReader } from "../journal-reader.js";
import { Activation, type ActivationEnding, type ActivationResult } from "./activation.js";
import { runCompensations, type Compensation } from "./compensation.js";
import { makeContext } from "./ctx.js";
import { forever, isJournaledError, isTransientDatabaseError } from "./failures.js";

/**
 * What an execution runs on, handed down by the worker (one object for all its
 * executions). Plain dependencies: nothing here calls back into the worker, which learns
 * what happened from the ActivationResult that run() returns.
 */
export interface ExecutionDeps {
  readonly storage: Storage;
  readonly leaseMs: number;
  readonly maxPayloadBytes: number;
  /** Captures and restores ambient context (trace, tenant …). */
  readonly propagation: ContextPropagation;
  /** Publishes wakeups after a commit. */
  readonly wake: (wakeups: readonly Wakeup[]) => void;
  /** Test hook (src/internal/debug-points.ts): named points where tests pause or kill the process. */
  readonly debugPoint: (name: string, info: Record<string, unknown>) => Promise<void>;
  /** Aborted when the worker starts shutting down: no new live work starts. */
  readonly stopping: AbortSignal;
}

interface Parked {
  seq: number;
  resolve: (e: JournalEntry) => void;
  /** Journal version right after the wait was registered; resuming in memory needs version + 1. */
  journalVersion: number;
}

/**
 * One in-memory run of an actor. It replays journaled operations, runs new ones live
 * (each journaled under the lease fence) and, at a wait, parks: the actor's promise
 * stays pending in memory so that a later wakeup on this worker can resume it without
 * replaying, as long as the journal has not moved under it. Each run() is one
 * activation, returned to the worker as an ActivationResult.
 *
 * The ctx operations live in the files of their concept (steps.ts, waits.ts, effects.ts,
 * compensation.ts), written as methods of this class; the members under "for the
 * operations" below are theirs, not the worker's.
 */
export class Execution {
  readonly id: string;
  readonly generation: number;
  fence: Fence;
  private readonly reader: JournalReader;
  private parked: Parked | undefined;
  /** The current activation: a resume opens the next one. */
  private activation = new Activation();
  /** How the actor function ended (returned or threw), once it has. */
  private finished: Promise<ActivationEnding> | undefined;
  private waiting = false;
  readonly ctx: ActorContext;
  /** A cancel arrived while replaying: end with "cancel" at the first operation not in the journal. */
  private cancelAtJournalEnd = false;
  /**
   * "compensate": the actor is compensating (after a failure or cancel). Its function is
   * replayed only to re-register compensation closures; the first operation that is not
   * in the journal ends the activation instead of running.
   */
  readonly mode: "normal" | "compensate";
  private readonly input: unknown;

  // ---- for the operations (steps.ts, waits.ts, effects.ts, compensation.ts) ----------------
  /** The journal position of the next operation. */
  seq = 0;
  state: "running" | "parked" | "abandoned" | "done" = "running";
  /** now/random/uuid/members entries recorded since the last journal write; they go out with the next one. */
  readonly buffered: JournalEntry[] = [];
  /** Live operations not settled yet. */
  readonly inflight = new Set<Promise<unknown>>();
  /** Compensations registered by steps of this generation (live or replayed), by journal position. */
  readonly compensations = new Map<number, Compensation>();
  /** The ambient context captured at spawn, restored around the actor and its compensations. */
  readonly context: ContextSnapshot | null;

  constructor(
    /** What it runs on (see ExecutionDeps): handed down, never called back into. */
    readonly host: ExecutionDeps,
    readonly def: ActorDefinition,
    row: ActorRow,
    worker: string,
  ) {
    this.id = row.id;
    this.generation = row.generation;
    this.fence = { actorId: row.id, leaseVersion: row.leaseVersion, worker };
    this.reader = new JournalReader(host.storage.journal, row.id, row.journalVersion);
    this.ctx = makeContext(this);
    this.input = decode(row.input);
    this.context = row.context;
    this.mode = row.status === "compensating" || row.cancelRequestedAt !== null ? "compensate" : "normal";
  }

  get hasCompensations(): boolean {
    return this.compensations.size > 0;
  }

  /** This execution's lease was lost to a newer claim (possibly our own): stop it. */
  supersede(): void {
    this.end({ kind: "abandoned", reason: "lock-lost" });
  }

  /**
   * Stops a running execution for cancellation (its in-flight steps finish and are journaled).
   * Never cuts a replay short: the compensations still to run need the closures that only
   * replaying the steps re-registers. A compensation-mode execution is ending anyway (it
   * stops at the end of its journal); a normal one still replaying stops there too (see
   * recorded()), before anything runs live.
   */
  requestCancel(): void {
    if (this.mode === "compensate" || (this.state !== "running" && this.state !== "parked")) return;
    if (this.state === "running" && !this.reader.caughtUp) this.cancelAtJournalEnd = true;
    else this.end({ kind: "cancel" });
  }

  /** See compensation.ts. */
  runCompensations(): Promise<{ failed: string[]; skipped: string[] }> {
    return runCompensations.call(this);
  }

  /** Where it waits, while parked (a resume needs the entry completing that wait). */
  get parkedAt(): Parked | undefined {
    return this.parked;
  }

  /** Parked at a wait and still resumable in memory (not superseded, cancelled or ended since). */
  get isParked(): boolean {
    return this.state === "parked";
  }

  /**
   * Runs one activation: starts the actor (first run) or carries on from the wait resume()
   * completed, until it parks at its next wait, ends or fails. Returns what happened; the
   * worker acts on it.
   */
  async run(): Promise<ActivationResult> {
    const activation = this.activation;
    this.finished ??= this.host.propagation
      .restore(this.context, async () => this.def.fn(this.ctx, this.input))
      .then(
        (value): ActivationEnding => ({ kind: "returned", value }),
        (error): ActivationEnding => ({ kind: "threw", error }),
      );
    const ending = await Promise.race([this.finished, activation.ended]);
    // Decided: what is reported for this activation from now on is too late to count (a
    // wait the actor did not await may still register while the function's end drains).
    activation.end(ending);
    return { ending: await this.drained(ending), fence: this.fence };
  }

  /** The function ended: let in-flight journal writes (concurrent steps) land before the final write. */
  private async drained(ending: ActivationEnding): Promise<ActivationEnding> {
    if (ending.kind !== "returned" && ending.kind !== "threw") return ending;
    await Promise.allSettled([...this.inflight]);
    if (this.state === "abandoned") return { kind: "abandoned", reason: "lock-lost" };
    if (ending.kind === "threw" && ending.error instanceof LockLostError)
      return { kind: "abandoned", reason: "lock-lost" };
    this.state = "done";
    return ending;
  }

  /**
   * Resumes a parked execution in memory with the entry that completed its wait, under a
   * new lease. Returns false (caller replays instead) if the journal moved in between.
   */
  resume(row: ActorRow, entry: JournalEntry): boolean {
    const p = this.parked;
    if (!p || this.state !== "parked" || row.generation !== this.generation) return false;
    if (row.journalVersion !== p.journalVersion + 1 || entry.seq !== p.seq) return false;
    this.fence = { actorId: row.id, leaseVersion: row.leaseVersion, worker: this.fence.worker };
    this.parked = undefined;
    this.state = "running";
    this.waiting = false;
    this.activation = new Activation();
    p.resolve(entry);
    return true;
  }

  /** Journal entries buffered for the final write (now/random/uuid after the last op). */
  takeBuffered(): JournalEntry[] {
    return this.buffered.splice(0);
  }

  // ---- primitives the operations are built from ------------------------------------------

  /**
   * Hands the buffered now/random/uuid/members entries to one write. If that write fails
   * (its transaction rolled back), they go back to the buffer, so the next write (e.g. the
   * error entry of a failed effect) still records them and a replay sees the same values.
   */
  async withBuffered<T>(write: (buffered: JournalEntry[]) => Promise<T>): Promise<T> {
    const buffered = this.takeBuffered();
    try {
      return await write(buffered);
    } catch (err) {
      this.buffered.unshift(...buffered);
      throw err;
    }
  }

  /** Ends the current activation (see Activation: only its first ending counts). */
  end(e: ActivationEnding): void {
    // After abandonment, a fatal error, cancel or recur, actor code that carries on just hangs: nothing more is journaled.
    if (e.kind !== "parked" && e.kind !== "returned" && e.kind !== "threw") this.state = "abandoned";
    this.activation.end(e);
  }

  /** Wraps a live operation: tracks it, and turns a lost lease into abandonment. */
  async live<T>(work: () => Promise<T>): Promise<T> {
    if (this.state === "abandoned") return forever();
    if (this.host.stopping.aborted) {
      this.end({ kind: "abandoned", reason: "stopping" });
      return forever();
    }
    const p = work();
    this.inflight.add(p);
    try {
      return await p;
    } catch (err) {
      if (err instanceof LockLostError) {
        this.end({ kind: "abandoned", reason: "lock-lost" });
        return forever();
      }
      if (err instanceof CancelRequested) {
        this.end({ kind: "cancel" });
        return forever();
      }
      if (isTransientDatabaseError(err)) {
        // Each journal write commits atomically with its effect, so a failed one left
        // nothing behind: stop, hand the lease back and replay, rather than fail the actor.
        this.end({ kind: "abandoned", reason: "transient" });
        return forever();
      }
      throw err;
    } finally {
      this.inflight.delete(p);
    }
  }

  /**
   * The journaled entry at `seq`, checked against what the code does now; null when the
   * operation has not happened yet. A mismatch ends the execution as non-deterministic.
   */
  async recorded(seq: number, kind: string, name: string): Promise<JournalEntry | null> {
    if (this.state === "abandoned") return forever();
    let e: JournalEntry | null;
    try {
      e = await this.reader.take(seq);
    } catch (err) {
      // The journal could not be read (the database is briefly away): stop and replay later,
      // rather than hand the error to actor code, which would fail the actor (and, replaying
      // to compensate, leave the compensations not yet re-registered unrun).
      if (!isTransientDatabaseError(err)) throw err;
      this.end({ kind: "abandoned", reason: "transient" });
      return forever();
    }
    if (!e && (this.mode === "compensate" || this.cancelAtJournalEnd)) {
      this.end({ kind: this.mode === "compensate" ? "compensate" : "cancel" });
      return forever();
    }
    if (e && (e.kind !== kind || e.name !== name)) {
      const err = new NonDeterminismError(seq, `${e.kind} "${e.name}"`, `${kind} "${name}"`);
      this.end({ kind: "fatal", error: err });
      throw err;
    }
    return e;
  }

  /** The recorded outcome of a replayed operation: its value, or its error thrown again. */
  replayed<T>(e: JournalEntry): T {
    if (e.error) throw errorFromRecord(e.error);
    return decode<T>(e.result);
  }

  async append(entry: JournalEntry): Promise<void> {
    this.stopIfCancelled(
      await this.host.storage.actors.append(this.fence, [...this.takeBuffered(), entry], this.host.leaseMs),
    );
  }

  /**
   * A journal write found a cancel request on the actor's row: stop here, as the cancel's
   * wakeup would (the operation just journaled stays done). Without this, a step finishing
   * before that wakeup arrives would let the next step start.
   */
  stopIfCancelled(written: { cancelRequested: boolean }): void {
    if (written.cancelRequested) this.requestCancel();
  }

  encodeValue(value: unknown, what: string): Buffer {
    return encode(value, { maxBytes: this.host.maxPayloadBytes, what });
  }

  /**
   * Waits at `wait.seq`. `register` either completes the wait at once (returns the entry,
   * e.g. a message already pending) or records the wait (returns the journal version) —
   * then the execution parks until a wakeup resumes it in memory (or never, if it is
   * evicted or resumed elsewhere by replay).
   */
  async waitFor(
    wait: WaitSpec,
    register: (buffered: JournalEntry[]) => Promise<{ entry: JournalEntry } | { parkedAt: number }>,
  ): Promise<JournalEntry> {
    if (this.waiting)
      throw new ValidationError(
        "an actor can wait on one thing at a time; use receiveAny to wait on several channels",
      );
    this.waiting = true;
    try {
      await Promise.allSettled([...this.inflight]); // journal what is in flight before parking
      await this.host.debugPoint("wait:before-register", { actorId: this.id, kind: wait.kind });
      const outcome = await this.live(() => this.withBuffered(register));
      if ("entry" in outcome) return outcome.entry;
      const resumed = new Promise<JournalEntry>((resolve) => {
        this.parked = { seq: wait.seq, resolve, journalVersion: outcome.parkedAt };
      });
      this.state = "parked";
      this.end({ kind: "parked", wait });
      return await resumed;
    } finally {
      this.waiting = false;
    }
  }

  /**
   * Runs a journaled effect. A TroupeError from it (mode conflict, unknown target …) is
   * journaled too, so a replay throws the same error instead of trying again.
   */
  async effect<T>(
    seq: number,
    kind: string,
    name: string,
    run: (buffered: JournalEntry[]) => Promise<T>,
  ): Promise<T> {
    return this.live(async () => {
      try {
        return await this.withBuffered(run);
      } catch (err) {
        if (isJournaledError(err)) {
          await this.append({ seq, kind, name, result: null, error: recordError(err) });
        }
        throw err;
      }
    });
  }
}
