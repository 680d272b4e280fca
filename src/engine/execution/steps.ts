import { AsyncLocalStorage } from "node:async_hooks";
import { optionsArg } from "../../arguments.js";
import { decode, encode } from "../../codec.js";
import { toMillis } from "../../duration.js";
import { LockLostError, StepTimeoutError, TroupeError, ValidationError } from "../../api/errors.js";
import { recordError } from "../../api/recorded-errors.js";
import { checkLabel } from "../../names.js";
import type { JournalEntry } from "../../storage/rows.js";
import type { StepOptions, StepTransaction, TransactionOptions } from "../../api/actor-context.js";
import { resolveRetry, runWithRetry, type AttemptInfo } from "../retry.js";
import { openStepTransaction, type StepTransactionScope } from "../step-transaction.js";
import type { Execution } from "./execution.js";
import { forever, isTransientDatabaseError } from "./failures.js";

// Steps and recorded values. Each function here is one ctx operation, written as a method
// of the Execution it runs in (called with `this` bound by ctx.ts).

/**
 * Set while a transactional step's callback runs: ctx calls made from inside it would commit
 * on their own (or, on PGlite's single connection, wait forever for the open transaction).
 */
export const insideTransaction = new AsyncLocalStorage<{ exec: Execution; step: string }>();

export async function step<T>(
  this: Execution,
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
      const written = await this.host.storage.sagas.stepWithCompensation(
        this.fence,
        [...this.takeBuffered(), entry],
        this.host.leaseMs,
        this.generation,
        seq,
        name,
      );
      this.compensations.set(seq, { kind: "step", run: (info) => compensate(value, info) });
      this.stopIfCancelled(written);
    } else {
      await this.append(entry);
    }
    return value;
  });
}

export async function transaction<T>(
  this: Execution,
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
            const { value, ...written } = await this.host.storage.actors.appendInTransaction(
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
                  await this.host.storage.sagas.addCompensation(tx, this.id, this.generation, seq, name);
                await this.host.debugPoint("tx:after-fn", { actorId: this.id, step: name, seq });
                // Timed out while fn ran: roll back rather than commit a step reported as failed.
                if (attempt.signal.aborted) throw attempt.signal.reason;
                return v;
              },
              (v) => [
                ...this.takeBuffered(),
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
            this.stopIfCancelled(written);
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

/** now/random/uuid: the recorded value on replay; live, a fresh value buffered into the next journal write. */
export async function deterministic<T>(this: Execution, kind: string, make: () => T): Promise<T> {
  const seq = this.seq++;
  const e = await this.recorded(seq, kind, "");
  if (e) return decode<T>(e.result);
  if (this.state === "abandoned") return forever();
  const value = make();
  this.buffered.push({ seq, kind, name: "", result: encode(value), error: null });
  return value;
}

/** Like deterministic(), for values read from the database (recorded under `name`). */
export async function deterministicAsync<T>(
  this: Execution,
  kind: string,
  name: string,
  read: () => Promise<T>,
): Promise<T> {
  const seq = this.seq++;
  const e = await this.recorded(seq, kind, name);
  if (e) return decode<T>(e.result);
  if (this.state === "abandoned") return forever();
  const value = await this.live(read);
  this.buffered.push({ seq, kind, name, result: encode(value), error: null });
  return value;
}
