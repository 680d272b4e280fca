import { checkTime, optionsArg } from "../arguments.js";
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { ActorDefinition } from "../actor.js";
import {
  channelName,
  isDurable,
  checkMode,
  sourceOf,
  validatePayload,
  type ChannelLike,
  type Message,
} from "../channels.js";
import { decode, encode, jsonText } from "../codec.js";
import { toMillis, type Duration } from "../duration.js";
import {
  LockLostError,
  StepTimeoutError,
  NonDeterminismError,
  TroupeError,
  ValidationError,
  errorFromRecord,
  recordError,
  type RecordedError,
} from "../errors.js";
import { checkLabel, checkName } from "../names.js";
import { prepareEvent, type CloudEventInput } from "../outbox/cloudevent.js";
import { CancelRequested, type WaitSpec } from "../storage/actor-store.js";
import type { Wakeup } from "../wakeups/wakeups.js";
import type { ContextPropagation, ContextSnapshot } from "../context-propagation.js";
import type { PendingCompensation } from "../storage/lifecycle-store.js";
import type { ActorRow, CompensationOutcome, Fence, JournalEntry } from "../storage/rows.js";
import type { Storage } from "../storage/storage.js";
import { isConnectionError } from "../storage/db-errors.js";
import type {
  ActorContext,
  PublishOptions,
  ReceiveOptions,
  CompensationInfo,
  StepOptions,
  StepTransaction,
  TransactionOptions,
} from "./context.js";
import { JournalReader } from "./journal-reader.js";
import { ephemeralMessage } from "../messaging/ephemeral.js";
import { writeFromActor } from "../messaging/from-actor.js";
import { prepareOutgoing } from "../messaging/outgoing.js";
import { openStepTransaction, type StepTransactionScope } from "./step-transaction.js";
import { resolveRetry, runWithRetry, type AttemptInfo } from "./retry.js";

/** What the worker needs from its surroundings. */
export interface ExecutionHost {
  readonly storage: Storage;
  readonly leaseMs: number;
  readonly maxPayloadBytes: number;
  /** True while the worker is shutting down: no new live work starts. */
  readonly stopping: boolean;
  /** Called after a wait with a deadline was registered (to arm a local timer). */
  onParked(exec: Execution, wait: WaitSpec): void;
  /** Captures and restores ambient context (trace, tenant …). */
  readonly propagation: ContextPropagation;
  /** Publishes wakeups after a commit. */
  wake(wakeups: readonly Wakeup[]): void;
  /** Test hook: named points in the engine where tests can pause or kill the process. */
  debugPoint(name: string, info: Record<string, unknown>): Promise<void>;
}

export type SegmentEnd =
  | { kind: "returned"; value: unknown }
  | { kind: "compensate" } // compensation mode: replay reached the end of the journal
  | { kind: "cancel" } // a cancel request stopped the execution
  | { kind: "recur" } // continue-as-new committed: start the next generation
  | { kind: "threw"; error: unknown }
  | { kind: "parked" }
  | { kind: "abandoned"; reason: "lock-lost" | "stopping" | "transient" }
  | { kind: "fatal"; error: TroupeError };

/** A registered compensation: a plain step's runs on its own, a transactional step's in a transaction. */
type Compensation =
  | { kind: "step"; run: (info: CompensationInfo) => Promise<void> | void }
  | { kind: "tx"; run: (tx: StepTransaction) => Promise<void> | void };

interface Parked {
  seq: number;
  resolve: (e: JournalEntry) => void;
  /** Journal version right after the wait was registered; resuming in memory needs version + 1. */
  journalVersion: number;
}

class Deferred<T> {
  resolve!: (v: T) => void;
  readonly promise = new Promise<T>((r) => (this.resolve = r));
}

/**
 * Deadlocks, serialization failures and lost connections (DatabaseUnavailableError): the
 * database's "try again". Never journaled as an operation's outcome: the execution is
 * abandoned and replayed instead.
 */
export function isTransientDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("40")) return true;
  return isConnectionError(err);
}

/** A typed outcome an operation keeps on replay; not a lost lease, nor the database being away. */
function isJournaledError(err: unknown): boolean {
  return err instanceof TroupeError && !(err instanceof LockLostError) && !isTransientDatabaseError(err);
}

/**
 * Set while a transactional step's callback runs: ctx calls made from inside it would commit
 * on their own (or, on PGlite's single connection, wait forever for the open transaction).
 */
const insideTransaction = new AsyncLocalStorage<{ exec: Execution; step: string }>();

/** Why a compensation was skipped: nothing registered code for it. */
const NOT_REGISTERED: RecordedError = {
  name: "Error",
  message:
    "never ran: its step was not reached again when the actor was replayed, so no compensation was registered",
};

/** Never settles: given to actor code after the execution was abandoned, so it simply stops. */
const forever = <T>() => new Promise<T>(() => {});

/**
 * One in-memory run of an actor. It replays journaled operations, runs new ones live
 * (each journaled under the lease fence) and, at a wait, parks: the actor's promise
 * stays pending in memory so that a later wakeup on this worker can resume it without
 * replaying (sticky execution), as long as the journal has not moved under it.
 */
export class Execution {
  readonly id: string;
  readonly generation: number;
  fence: Fence;
  private seq = 0;
  private readonly reader: JournalReader;
  private readonly local: JournalEntry[] = []; // now/random/uuid: written with the next journal write
  private readonly inflight = new Set<Promise<unknown>>();
  private parked: Parked | undefined;
  private segment = new Deferred<SegmentEnd>();
  private finished: Promise<SegmentEnd> | undefined;
  private state: "running" | "parked" | "abandoned" | "done" = "running";
  private waiting = false;
  readonly ctx: ActorContext;
  /** Compensations registered by steps of this generation (live or replayed), by journal position. */
  private readonly compensations = new Map<number, Compensation>();
  /** A cancel arrived while replaying: end with "cancel" at the first operation not in the journal. */
  private cancelAtJournalEnd = false;
  /**
   * "compensate": the actor is compensating (after a failure or cancel). Its function is
   * replayed only to re-register compensation closures; the first operation that is not
   * in the journal ends the segment instead of running.
   */
  readonly mode: "normal" | "compensate";

  constructor(
    private readonly host: ExecutionHost,
    readonly def: ActorDefinition,
    row: ActorRow,
    worker: string,
  ) {
    this.id = row.id;
    this.generation = row.generation;
    this.fence = { actorId: row.id, leaseVersion: row.leaseVersion, worker };
    this.reader = new JournalReader(host.storage.journal, row.id, row.journalVersion);
    this.ctx = this.makeContext();
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

  /**
   * Runs the pending compensations newest first, each settled (fenced) as soon as it ends,
   * so a crash resumes with the ones left: "done", "failed" (it ran and threw, retries
   * spent) or "skipped" (no code for it: its step was not reached again on replay). Returns
   * the names that failed and that were skipped, for the actor's record.
   */
  async runCompensations(): Promise<{ failed: string[]; skipped: string[] }> {
    await Promise.allSettled([...this.inflight]);
    const failed: string[] = [];
    const skipped: string[] = [];
    for (const p of await this.host.storage.lifecycle.pending(this.id, this.generation)) {
      const c = this.compensations.get(p.seq);
      let outcome: CompensationOutcome = "skipped";
      let error: RecordedError | null = NOT_REGISTERED;
      if (c) {
        try {
          await (c.kind === "tx" ? this.compensateInTransaction(p, c) : this.compensateStep(p, c));
          outcome = "done";
          error = null;
        } catch (err) {
          // Interrupted, not failed: the compensation is resumed after the lease, as after a crash.
          if (err instanceof LockLostError || isTransientDatabaseError(err)) throw err;
          outcome = "failed";
          error = recordError(err);
        }
      }
      if (outcome === "failed") failed.push(p.name);
      if (outcome === "skipped") skipped.push(p.name);
      // A transactional compensation marked itself done in its own transaction.
      if (outcome !== "done" || c?.kind !== "tx")
        await this.host.storage.lifecycle.settleCompensation(
          this.fence,
          this.host.leaseMs,
          this.generation,
          p.seq,
          outcome,
          error,
        );
      await this.host.debugPoint("compensation:settled", {
        actorId: this.id,
        name: p.name,
        ok: outcome === "done",
        outcome,
      });
    }
    return { failed, skipped };
  }

  private async compensateStep(p: PendingCompensation, c: Extract<Compensation, { kind: "step" }>) {
    const idempotencyKey = `${this.id}:${this.generation}:${p.seq}`;
    await runWithRetry(
      `compensate ${p.name}`,
      async (a) => {
        await this.host.propagation.restore(this.context, () => c.run({ ...a, idempotencyKey }));
        await this.host.debugPoint("compensation:after-fn", { actorId: this.id, name: p.name });
      },
      resolveRetry(undefined, "compensation"),
      undefined,
    );
  }

  /** Its writes and its "done" mark commit together: exactly once. */
  private async compensateInTransaction(p: PendingCompensation, c: Extract<Compensation, { kind: "tx" }>) {
    await runWithRetry(
      `compensate ${p.name}`,
      async () => {
        let scope: StepTransactionScope | undefined;
        await this.host.storage.lifecycle.settleCompensationInTransaction(
          this.fence,
          this.host.leaseMs,
          this.generation,
          p.seq,
          async (tx) => {
            // Its messages' origin: the compensated step's position, negated so it never
            // collides with what the step itself published.
            scope = openStepTransaction(tx, this.host, {
              actorId: this.id,
              actorName: this.def.name,
              generation: this.generation,
              seq: -1 - p.seq,
              step: `compensate ${p.name}`,
            });
            try {
              await insideTransaction.run({ exec: this, step: `compensate ${p.name}` }, () =>
                this.host.propagation.restore(this.context, () => c.run(scope!.api)),
              );
            } finally {
              scope.close();
            }
            await this.host.debugPoint("compensation:after-fn", { actorId: this.id, name: p.name });
          },
        );
        scope?.afterCommit();
      },
      resolveRetry(undefined, "compensation"),
      undefined,
      (err) => err instanceof LockLostError,
    );
  }

  private readonly input: unknown;
  private readonly context: ContextSnapshot | null;

  get parkedAt(): Parked | undefined {
    return this.parked;
  }

  /** Starts (first segment) or continues the actor; resolves when it returns, throws, parks or is abandoned. */
  run(): Promise<SegmentEnd> {
    this.finished ??= this.host.propagation
      .restore(this.context, async () => this.def.fn(this.ctx, this.input))
      .then(
        (value): SegmentEnd => ({ kind: "returned", value }),
        (error): SegmentEnd => ({ kind: "threw", error }),
      );
    return Promise.race([this.finished, this.segment.promise]).then(async (end) => {
      if (end.kind === "returned" || end.kind === "threw") {
        // Let in-flight journal writes (concurrent steps) land before the final write.
        await Promise.allSettled([...this.inflight]);
        if (this.state === "abandoned") return { kind: "abandoned", reason: "lock-lost" };
        if (end.kind === "threw" && end.error instanceof LockLostError)
          return { kind: "abandoned", reason: "lock-lost" };
        this.state = "done";
      }
      return end;
    });
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
    this.segment = new Deferred<SegmentEnd>();
    p.resolve(entry);
    return true;
  }

  /** Journal entries buffered for the final write (now/random/uuid after the last op). */
  drainLocal(): JournalEntry[] {
    return this.local.splice(0);
  }

  /**
   * Hands the buffered now/random/uuid/members entries to one write. If that write fails
   * (its transaction rolled back), they go back to the buffer, so the next write (e.g. the
   * error entry of a failed effect) still records them and a replay sees the same values.
   */
  private async withLocals<T>(write: (locals: JournalEntry[]) => Promise<T>): Promise<T> {
    const locals = this.drainLocal();
    try {
      return await write(locals);
    } catch (err) {
      this.local.unshift(...locals);
      throw err;
    }
  }

  // ---- primitives used by the context -------------------------------------------------

  private end(e: SegmentEnd): void {
    // After abandonment, a fatal error, cancel or recur, actor code that carries on just hangs: nothing more is journaled.
    if (e.kind !== "parked" && e.kind !== "returned" && e.kind !== "threw") this.state = "abandoned";
    this.segment.resolve(e);
  }

  /** Wraps a live operation: tracks it, and turns a lost lease into abandonment. */
  private async live<T>(work: () => Promise<T>): Promise<T> {
    if (this.state === "abandoned") return forever();
    if (this.host.stopping) {
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
  private async recorded(seq: number, kind: string, name: string): Promise<JournalEntry | null> {
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

  private async append(entry: JournalEntry): Promise<void> {
    await this.host.storage.actors.append(this.fence, [...this.drainLocal(), entry], this.host.leaseMs);
  }

  private encodeValue(value: unknown, what: string): Buffer {
    return encode(value, { maxBytes: this.host.maxPayloadBytes, what });
  }

  /**
   * Waits at `wait.seq`. `register` either completes the wait at once (returns the entry,
   * e.g. a message already pending) or records the wait (returns the journal version) —
   * then the execution parks until a wakeup resumes it in memory (or never, if it is
   * evicted or resumed elsewhere by replay).
   */
  private async waitFor(
    wait: WaitSpec,
    register: (locals: JournalEntry[]) => Promise<{ entry: JournalEntry } | { parkedAt: number }>,
  ): Promise<JournalEntry> {
    if (this.waiting)
      throw new ValidationError(
        "an actor can wait on one thing at a time; use receiveAny to wait on several channels",
      );
    this.waiting = true;
    try {
      await Promise.allSettled([...this.inflight]); // journal what is in flight before parking
      await this.host.debugPoint("wait:before-register", { actorId: this.id, kind: wait.kind });
      const outcome = await this.live(() => this.withLocals(register));
      if ("entry" in outcome) return outcome.entry;
      const resumed = new Promise<JournalEntry>((resolve) => {
        this.parked = { seq: wait.seq, resolve, journalVersion: outcome.parkedAt };
      });
      this.state = "parked";
      this.host.onParked(this, wait);
      this.end({ kind: "parked" });
      return await resumed;
    } finally {
      this.waiting = false;
    }
  }

  /**
   * Runs a journaled effect. A TroupeError from it (mode conflict, unknown target …) is
   * journaled too, so a replay throws the same error instead of trying again.
   */
  private async effect<T>(
    seq: number,
    kind: string,
    name: string,
    run: (locals: JournalEntry[]) => Promise<T>,
  ): Promise<T> {
    return this.live(async () => {
      try {
        return await this.withLocals(run);
      } catch (err) {
        if (isJournaledError(err)) {
          await this.append({ seq, kind, name, result: null, error: recordError(err) });
        }
        throw err;
      }
    });
  }

  // ---- the context ------------------------------------------------------------------

  private makeContext(): ActorContext {
    const ctx: ActorContext = {
      id: this.id,
      name: this.def.name,
      step: (name, fn, options) => this.step(name, fn, options),
      transaction: (name, fn, options) => this.transaction(name, fn, options),
      sleep: (d: Duration) => this.sleepFor(toMillis(d, "ctx.sleep")),
      sleepUntil: (when) => this.sleepUntil(when),
      now: () => this.deterministic("now", () => new Date()),
      random: () => this.deterministic("random", () => Math.random()),
      uuid: () => this.deterministic("uuid", () => randomUUID()),
      subscribe: (ch, mode) => this.subscribe(ch, mode),
      unsubscribe: (ch) => this.unsubscribe(ch),
      receive: <T>(ch: ChannelLike<T>, o?: ReceiveOptions) => this.receive<T>([ch], "receive", o),
      receiveAny: (chs, o) => {
        if (!Array.isArray(chs) || chs.length === 0)
          throw new ValidationError("receiveAny needs a non-empty array of channels");
        return this.receive<unknown>(chs, "receiveAny", o);
      },
      publish: (ch, data, o) => this.publish(ch, data, o),
      send: (to, ch, data, o) => this.send(to, ch, data, o),
      join: (g) => this.membership("join", g),
      leave: (g) => this.membership("leave", g),
      members: (g) => {
        checkName(g, "group name");
        return this.deterministicAsync("members", g, () => this.host.storage.groups.members(g));
      },
      broadcast: (g, ch, data, o) => this.broadcast(g, ch, data, o),
      emit: (event) => this.emitEvent(event),
      recur: (input) => this.recur(input),
    };
    // Bad arguments must reject the returned promise, never throw synchronously: `await
    // ctx.sleep("x")` and `ctx.sleep("x").catch(…)` then behave the same.
    const methods = ctx as unknown as Record<string, unknown>;
    for (const [k, f] of Object.entries(methods)) {
      if (typeof f !== "function") continue;
      methods[k] = (...args: unknown[]) => {
        const inside = insideTransaction.getStore();
        if (inside?.exec === this)
          return Promise.reject(
            new ValidationError(
              `ctx.${k} inside ctx.transaction("${inside.step}"): it would commit outside that transaction. ` +
                `Use tx.publish / tx.send / tx.broadcast / tx.emit there, and other ctx calls before or after it`,
            ),
          );
        try {
          return (f as (...a: unknown[]) => unknown)(...args);
        } catch (err) {
          return Promise.reject(err);
        }
      };
    }
    return Object.freeze(ctx);
  }

  private replayed<T>(e: JournalEntry): T {
    if (e.error) throw errorFromRecord(e.error);
    return decode<T>(e.result);
  }

  private async step<T>(
    name: string,
    fn: (a: AttemptInfo) => Promise<T> | T,
    stepOptions?: StepOptions,
  ): Promise<T> {
    checkLabel(name, "step name");
    const options = optionsArg(stepOptions, `step "${name}" options`);
    if (typeof fn !== "function")
      throw new ValidationError(`step "${name}": the second argument must be a function`);
    const retry = resolveRetry(options.retry, `step "${name}"`);
    const timeoutMs =
      options.timeout === undefined ? undefined : toMillis(options.timeout, `step "${name}" timeout`);
    const compensate = options.compensate;
    if (compensate !== undefined && typeof compensate !== "function") {
      throw new ValidationError(`step "${name}": compensate must be a function`);
    }
    const seq = this.seq++;
    const e = await this.recorded(seq, "step", name);
    if (e) {
      const value = this.replayed<T>(e);
      if (compensate) this.compensations.set(seq, { kind: "step", run: (info) => compensate(value, info) });
      return value;
    }
    return this.live(async () => {
      let value: T;
      try {
        value = await runWithRetry(name, fn, retry, timeoutMs);
      } catch (err) {
        await this.append({ seq, kind: "step", name, result: null, error: recordError(err) });
        throw err;
      }
      await this.host.debugPoint("step:after-fn", { actorId: this.id, step: name, seq });
      const entry: JournalEntry = {
        seq,
        kind: "step",
        name,
        result: this.encodeValue(value, `result of step "${name}"`),
        error: null,
      };
      if (compensate) {
        await this.host.storage.lifecycle.stepWithCompensation(
          this.fence,
          [...this.drainLocal(), entry],
          this.host.leaseMs,
          this.generation,
          seq,
          name,
        );
        this.compensations.set(seq, { kind: "step", run: (info) => compensate(value, info) });
      } else {
        await this.append(entry);
      }
      return value;
    });
  }

  private async transaction<T>(
    name: string,
    fn: (tx: StepTransaction) => Promise<T>,
    txOptions?: TransactionOptions,
  ): Promise<T> {
    checkLabel(name, "step name");
    const options = optionsArg(txOptions, `transaction "${name}" options`);
    if (typeof fn !== "function")
      throw new ValidationError(`transaction "${name}": the second argument must be a function`);
    const retry = resolveRetry(options.retry, `transaction "${name}"`);
    const timeoutMs =
      options.timeout === undefined ? undefined : toMillis(options.timeout, `transaction "${name}" timeout`);
    const compensate = options.compensate;
    if (compensate !== undefined && typeof compensate !== "function") {
      throw new ValidationError(`transaction "${name}": compensate must be a function`);
    }
    const seq = this.seq++;
    const e = await this.recorded(seq, "tx", name);
    if (e) {
      const value = this.replayed<T>(e);
      if (compensate) this.compensations.set(seq, { kind: "tx", run: (tx) => compensate(value, tx) });
      return value;
    }
    return this.live(async () => {
      // The attempt in flight: a timeout rejects the race, not the transaction (see below).
      let inflight: Promise<T> | undefined;
      try {
        return await runWithRetry(
          name,
          (attempt) =>
            (inflight = (async () => {
              let scope: StepTransactionScope | undefined;
              const { value } = await this.host.storage.actors.appendInTransaction(
                this.fence,
                this.host.leaseMs,
                async (tx) => {
                  scope = openStepTransaction(tx, this.host, {
                    actorId: this.id,
                    actorName: this.def.name,
                    generation: this.generation,
                    seq,
                    step: name,
                  });
                  let v: T;
                  try {
                    v = await insideTransaction.run({ exec: this, step: name }, () => fn(scope!.api));
                  } finally {
                    scope.close();
                  }
                  // Registered in the step's own transaction: the compensation exists iff the step committed.
                  if (compensate)
                    await this.host.storage.lifecycle.addCompensation(
                      tx,
                      this.id,
                      this.generation,
                      seq,
                      name,
                    );
                  await this.host.debugPoint("tx:after-fn", { actorId: this.id, step: name, seq });
                  // Timed out while fn ran: roll back rather than commit a step reported as failed.
                  if (attempt.signal.aborted) throw attempt.signal.reason;
                  return v;
                },
                (v) => [
                  ...this.drainLocal(),
                  {
                    seq,
                    kind: "tx",
                    name,
                    result: this.encodeValue(v, `result of transaction "${name}"`),
                    error: null,
                  },
                ],
              );
              scope?.afterCommit();
              // Registered before this live operation settles: a cancel that stopped the
              // execution meanwhile runs the compensations once in-flight work settled.
              if (compensate) this.compensations.set(seq, { kind: "tx", run: (tx) => compensate(value, tx) });
              return value;
            })()),
          retry,
          timeoutMs,
          (err) => err instanceof LockLostError || err instanceof TroupeError,
        );
      } catch (err) {
        if (err instanceof StepTimeoutError && inflight) {
          // The timeout fired while the transaction was committing (or about to): wait for
          // it. Committed, the step is done — its journal entry exists, and recording an
          // error for the same position would be a duplicate key; rolled back, it failed.
          const settled = await inflight.then(
            (v) => ({ v }),
            () => undefined,
          );
          if (settled) return settled.v;
        }
        if (err instanceof LockLostError || isTransientDatabaseError(err)) throw err;
        await this.append({ seq, kind: "tx", name, result: null, error: recordError(err) });
        throw err;
      }
    });
  }

  private async sleepFor(ms: number): Promise<void> {
    const seq = this.seq++;
    const e = await this.recorded(seq, "sleep", "");
    if (e) return;
    if (ms <= 0) {
      await this.live(() => this.append({ seq, kind: "sleep", name: "", result: null, error: null }));
      return;
    }
    await this.sleepAt(seq, new Date(Date.now() + ms));
  }

  private async sleepAt(seq: number, until: Date): Promise<void> {
    const wait: WaitSpec = { seq, kind: "sleep", name: "", until };
    await this.waitFor(wait, async (locals) => ({
      parkedAt: await this.host.storage.actors.suspend(this.fence, wait, locals),
    }));
  }

  private async sleepUntil(when: Date | number): Promise<void> {
    const at = checkTime(when, "ctx.sleepUntil", { numbers: true });
    const seq = this.seq++;
    const e = await this.recorded(seq, "sleep", "");
    if (e) return;
    if (at <= Date.now()) {
      await this.live(() => this.append({ seq, kind: "sleep", name: "", result: null, error: null }));
      return;
    }
    await this.sleepAt(seq, new Date(at));
  }

  /** now/random/uuid: the recorded value on replay; live, a fresh value buffered into the next journal write. */
  private async deterministic<T>(kind: string, make: () => T): Promise<T> {
    const seq = this.seq++;
    const e = await this.recorded(seq, kind, "");
    if (e) return decode<T>(e.result);
    if (this.state === "abandoned") return forever();
    const value = make();
    this.local.push({ seq, kind, name: "", result: encode(value), error: null });
    return value;
  }

  /** Like deterministic(), for values read from the database (recorded under `name`). */
  private async deterministicAsync<T>(kind: string, name: string, read: () => Promise<T>): Promise<T> {
    const seq = this.seq++;
    const e = await this.recorded(seq, kind, name);
    if (e) return decode<T>(e.result);
    if (this.state === "abandoned") return forever();
    const value = await this.live(read);
    this.local.push({ seq, kind, name, result: encode(value), error: null });
    return value;
  }

  // ---- channels and groups ----------------------------------------------------------

  private async subscribe(ch: ChannelLike, mode: unknown): Promise<void> {
    const name = channelName(ch);
    if (!isDurable(ch)) {
      throw new ValidationError(
        `channel "${name}" is not durable: actors cannot subscribe to it (use troupe.listen)`,
      );
    }
    const m = checkMode(mode);
    const seq = this.seq++;
    const e = await this.recorded(seq, "subscribe", name);
    if (e) return void this.replayed(e);
    await this.effect(seq, "subscribe", name, (locals) =>
      this.host.storage.channels.subscribe(
        this.fence,
        [...locals, { seq, kind: "subscribe", name, result: encode(m), error: null }],
        this.host.leaseMs,
        { channel: name, mode: m, source: sourceOf(name, m, this.id) },
      ),
    );
  }

  private async unsubscribe(ch: ChannelLike): Promise<void> {
    const name = channelName(ch);
    const seq = this.seq++;
    const e = await this.recorded(seq, "unsubscribe", name);
    if (e) return void this.replayed(e);
    await this.effect(seq, "unsubscribe", name, (locals) =>
      this.host.storage.channels.unsubscribe(
        this.fence,
        [...locals, { seq, kind: "unsubscribe", name, result: null, error: null }],
        this.host.leaseMs,
        name,
      ),
    );
  }

  private async receive<T>(
    chs: readonly ChannelLike<any>[],
    kind: "receive" | "receiveAny",
    options?: ReceiveOptions,
  ) {
    const o = optionsArg(options, `${kind} options`);
    const names = chs.map((c) => channelName(c));
    if (new Set(names).size !== names.length)
      throw new ValidationError(`${kind}: the same channel is listed twice`);
    const timeoutMs = o.timeout === undefined ? undefined : toMillis(o.timeout, `${kind} timeout`);
    const name = names.join("|");
    const seq = this.seq++;
    let e = await this.recorded(seq, kind, name);
    if (!e) {
      const wait: WaitSpec = {
        seq,
        kind,
        name,
        until: timeoutMs === undefined ? undefined : new Date(Date.now() + timeoutMs),
      };
      e = await this.waitForMessage(wait, names);
    }
    if (e.error) throw errorFromRecord(e.error);
    const msg = decode<Message<T> | undefined>(e.result);
    if (!msg) return null; // timed out
    const handle = chs[names.indexOf(msg.channel)] ?? msg.channel;
    msg.data = validatePayload(handle, msg.data) as T;
    return msg;
  }

  private async waitForMessage(wait: WaitSpec, names: string[]): Promise<JournalEntry> {
    try {
      return await this.waitFor(wait, (locals) =>
        this.host.storage.channels.receiveOrWait(this.fence, locals, this.host.leaseMs, wait, names, () =>
          this.host.debugPoint("receive:before-wait", { actorId: this.id, channels: names }),
        ),
      );
    } catch (err) {
      if (isJournaledError(err)) {
        await this.live(() =>
          this.append({
            seq: wait.seq,
            kind: wait.kind,
            name: wait.name,
            result: null,
            error: recordError(err),
          }),
        );
      }
      throw err;
    }
  }

  private async publish<T>(ch: ChannelLike<T>, data: T, options?: PublishOptions): Promise<{ id: string }> {
    const out = prepareOutgoing({ op: "publish", ch, data, options }, "actor", this.host.maxPayloadBytes);
    const seq = this.seq++;
    if (!out.durable) return this.publishEphemeral(seq, out.name, out.payload, out.metadata);
    const e = await this.recorded(seq, "publish", out.label);
    if (e) return this.replayed(e);
    return this.effect(seq, "publish", out.label, async (locals) => {
      const r = await writeFromActor(this.host, this.fence, out, seq, locals);
      await this.host.debugPoint("publish:after", { actorId: this.id, seq, channel: out.name });
      return r;
    });
  }

  private async send<T>(
    to: string,
    ch: ChannelLike<T>,
    data: T,
    options?: PublishOptions,
  ): Promise<{ id: string }> {
    const out = prepareOutgoing({ op: "send", to, ch, data, options }, "actor", this.host.maxPayloadBytes);
    const seq = this.seq++;
    const e = await this.recorded(seq, "send", out.label);
    if (e) return this.replayed(e);
    return this.effect(seq, "send", out.label, async (locals) => {
      const r = await writeFromActor(this.host, this.fence, out, seq, locals);
      await this.host.debugPoint("send:after", { actorId: this.id, seq, channel: out.source });
      return r;
    });
  }

  private async broadcast<T>(
    group: string,
    ch: ChannelLike<T>,
    data: T,
    options?: PublishOptions,
  ): Promise<{ count: number }> {
    const out = prepareOutgoing(
      { op: "broadcast", group, ch, data, options },
      "actor",
      this.host.maxPayloadBytes,
    );
    const seq = this.seq++;
    const e = await this.recorded(seq, "broadcast", out.label);
    if (e) return this.replayed(e);
    return this.effect(seq, "broadcast", out.label, (locals) =>
      writeFromActor(this.host, this.fence, out, seq, locals),
    );
  }

  private async membership(kind: "join" | "leave", group: string): Promise<void> {
    checkName(group, "group name");
    const seq = this.seq++;
    const e = await this.recorded(seq, kind, group);
    if (e) return void this.replayed(e);
    await this.effect(seq, kind, group, (locals) =>
      this.host.storage.groups[kind](
        this.fence,
        [...locals, { seq, kind, name: group, result: null, error: null }],
        this.host.leaseMs,
        group,
      ),
    );
  }

  /** Continue-as-new: archive this generation's journal and start again with `input`. Never returns. */
  private async recur(input: unknown): Promise<never> {
    const bytes = this.encodeValue(input, "recur input");
    if (this.mode === "compensate") {
      this.end({ kind: "compensate" });
      return forever();
    }
    await Promise.allSettled([...this.inflight]);
    await this.live(() =>
      this.host.storage.lifecycle.recur(
        this.fence,
        this.drainLocal(),
        this.host.leaseMs,
        bytes,
        jsonText(bytes),
      ),
    );
    this.end({ kind: "recur" });
    return forever();
  }

  /** Non-durable channels: sent through the wakeup transport only; recorded so a replay does not send again. */
  private async publishEphemeral(seq: number, name: string, data: Buffer, metadata: Record<string, unknown>) {
    const e = await this.recorded(seq, "publish-ephemeral", name);
    if (e) return decode<{ id: string }>(e.result);
    if (this.state === "abandoned") return forever<{ id: string }>();
    const { id, wakeup } = ephemeralMessage(name, data, metadata, this.id);
    this.host.wake([wakeup]);
    this.local.push({ seq, kind: "publish-ephemeral", name, result: encode({ id }), error: null });
    return { id };
  }

  private async emitEvent(event: CloudEventInput): Promise<{ id: string }> {
    const prepared = prepareEvent(event, { maxBytes: this.host.maxPayloadBytes }); // bad input changes nothing
    const seq = this.seq++;
    const e = await this.recorded(seq, "emit", prepared.type);
    if (e) return this.replayed(e);
    return this.effect(seq, "emit", prepared.type, (locals) =>
      this.host.storage.outbox.emitFromActor(
        this.fence,
        locals,
        { seq, leaseMs: this.host.leaseMs, generation: this.generation },
        prepared,
      ),
    );
  }
}
