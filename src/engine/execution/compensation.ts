import { LockLostError, type RecordedError } from "../../api/errors.js";
import { recordError } from "../../api/recorded-errors.js";
import type { PendingCompensation } from "../../storage/saga-store.js";
import type { CompensationOutcome } from "../../storage/rows.js";
import type { CompensationInfo, StepTransaction } from "../../api/actor-context.js";
import { resolveRetry, runWithRetry } from "../retry.js";
import { openStepTransaction, type StepTransactionScope } from "../step-transaction.js";
import type { Execution } from "./execution.js";
import { isTransientDatabaseError } from "./failures.js";
import { insideTransaction } from "./steps.js";

/** A registered compensation: a plain step's runs on its own, a transactional step's in a transaction. */
export type Compensation =
  | { kind: "step"; run: (info: CompensationInfo) => Promise<void> | void }
  | { kind: "tx"; run: (tx: StepTransaction) => Promise<void> | void };

/** Why a compensation was skipped: nothing registered code for it. */
const NOT_REGISTERED: RecordedError = {
  name: "Error",
  message:
    "never ran: its step was not reached again when the actor was replayed, so no compensation was registered",
};

/**
 * Runs the pending compensations newest first, each settled (fenced) as soon as it ends,
 * so a crash resumes with the ones left: "done", "failed" (it ran and threw, retries
 * spent) or "skipped" (no code for it: its step was not reached again on replay). Returns
 * the names that failed and that were skipped, for the actor's record.
 */
export async function runCompensations(this: Execution): Promise<{ failed: string[]; skipped: string[] }> {
  await Promise.allSettled([...this.inflight]);
  const failed: string[] = [];
  const skipped: string[] = [];
  for (const p of await this.host.storage.sagas.pending(this.id, this.generation)) {
    const c = this.compensations.get(p.seq);
    let outcome: CompensationOutcome = "skipped";
    let error: RecordedError | null = NOT_REGISTERED;
    if (c) {
      try {
        await (c.kind === "tx" ? compensateInTransaction.call(this, p, c) : compensateStep.call(this, p, c));
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
      await this.host.storage.sagas.settleCompensation(
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

async function compensateStep(
  this: Execution,
  p: PendingCompensation,
  c: Extract<Compensation, { kind: "step" }>,
): Promise<void> {
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
async function compensateInTransaction(
  this: Execution,
  p: PendingCompensation,
  c: Extract<Compensation, { kind: "tx" }>,
): Promise<void> {
  await runWithRetry(
    `compensate ${p.name}`,
    async () => {
      let scope: StepTransactionScope | undefined;
      await this.host.storage.sagas.settleCompensationInTransaction(
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
