import { LockLostError, type RecordedError } from "../errors.js";
import type { ActorStore } from "./actor-store.js";
import { MS, type StoreContext } from "./context.js";
import type { SqlClient } from "./database.js";
import type { ActorStatus, CompensationOutcome, CompensationRecord, Fence, JournalEntry } from "./rows.js";
import { leaseHeld } from "./sql/fence.js";

export interface PendingCompensation {
  seq: number;
  name: string;
}

export type CancelOutcome =
  | { kind: "cancelled" } // it was idle: finished as cancelled right here
  | { kind: "compensating" } // it was idle with compensations: a worker will run them
  | { kind: "requested"; worker: string } // a worker runs it now: that worker will stop it
  | { kind: "already-cancelled" }
  | { kind: "finished"; status: ActorStatus }
  | { kind: "not-found" };

/** Saga compensations, cancellation and continue-as-new. */
export class LifecycleStore {
  constructor(
    private readonly c: StoreContext,
    private readonly actors: ActorStore,
  ) {}

  /** Records a compensation for a step in the step's own journal transaction. */
  async stepWithCompensation(
    fence: Fence,
    entries: readonly JournalEntry[],
    leaseMs: number,
    generation: number,
    seq: number,
    name: string,
  ) {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await this.addCompensation(tx, fence.actorId, generation, seq, name);
    });
  }

  /** Inside the caller's transaction (a transactional step's): registers its compensation. */
  async addCompensation(tx: SqlClient, actorId: string, generation: number, seq: number, name: string) {
    await tx.query(
      this.c.sql(
        `INSERT INTO {schema}.compensations (actor_id, generation, seq, name) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      ),
      [actorId, generation, seq, name],
    );
  }

  /** Pending compensations of the current generation, newest first (LIFO). */
  async pending(actorId: string, generation: number): Promise<PendingCompensation[]> {
    const { rows } = await this.c.db.query<{ seq: number; name: string }>(
      this.c.sql(`SELECT seq, name FROM {schema}.compensations
                   WHERE actor_id = $1 AND generation = $2 AND status = 'pending' ORDER BY seq DESC`),
      [actorId, generation],
    );
    return rows.map((r) => ({ seq: Number(r.seq), name: r.name }));
  }

  /** Every compensation of the current generation, in the order its steps ran. */
  async records(actorId: string, generation: number): Promise<CompensationRecord[]> {
    const { rows } = await this.c.db.query<{
      name: string;
      status: CompensationRecord["status"];
      error: RecordedError | null;
      done_at: Date | null;
    }>(
      this.c.sql(`SELECT name, status, error, done_at FROM {schema}.compensations
                   WHERE actor_id = $1 AND generation = $2 ORDER BY seq`),
      [actorId, generation],
    );
    return rows.map((r) => ({
      name: r.name,
      status: r.status,
      ...(r.error ? { error: r.error } : {}),
      ...(r.done_at ? { settledAt: r.done_at } : {}),
    }));
  }

  async hasPending(actorId: string, generation: number): Promise<boolean> {
    return (await this.pending(actorId, generation)).length > 0;
  }

  /** Enters the compensating state (fenced), remembering why. */
  async beginCompensation(
    fence: Fence,
    leaseMs: number,
    error: RecordedError | null,
    entries: readonly JournalEntry[],
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await tx.query(
        this.c.sql(`UPDATE {schema}.actors SET status = 'compensating', error = COALESCE($2::jsonb, error),
                      wait_seq = NULL, wait_kind = NULL, wait_name = NULL, wait_until = NULL, updated_at = now()
                     WHERE id = $1`),
        [fence.actorId, error ? JSON.stringify(error) : null],
      );
      await this.clearWaits(tx, fence.actorId);
    });
  }

  /** Marks one compensation done, failed or skipped (fenced): a settled compensation never runs again. */
  async settleCompensation(
    fence: Fence,
    leaseMs: number,
    generation: number,
    seq: number,
    outcome: CompensationOutcome,
    error: RecordedError | null = null,
    client: SqlClient = this.c.db,
  ): Promise<void> {
    const { rows } = await client.query(
      this.c.sql(`
        WITH f AS (
          UPDATE {schema}.actors SET updated_at = now(), lease_expires_at = now() + ${MS("$5")}
           WHERE ${leaseHeld({ id: "$1", version: "$2", owner: "$3" })} RETURNING id)
        UPDATE {schema}.compensations c SET status = $6, error = $8::jsonb, done_at = now()
          FROM f WHERE c.actor_id = f.id AND c.generation = $4 AND c.seq = $7 AND c.status = 'pending'
        RETURNING 1`),
      [
        fence.actorId,
        fence.leaseVersion,
        fence.worker,
        generation,
        leaseMs,
        outcome,
        seq,
        error ? JSON.stringify(error) : null,
      ],
    );
    if (rows.length === 0) throw new LockLostError(fence.actorId);
  }

  /**
   * Runs a transactional compensation: `fn`'s writes and the "done" mark commit together, so
   * its database effects happen exactly once, whatever crashes. The lease is proven first
   * (plain read, as for a transactional step) and fenced again at the end.
   */
  async settleCompensationInTransaction(
    fence: Fence,
    leaseMs: number,
    generation: number,
    seq: number,
    fn: (tx: SqlClient) => Promise<void>,
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      const proof = await tx.query(
        this.c.sql(`SELECT 1 FROM {schema}.compensations c JOIN {schema}.actors a ON a.id = c.actor_id
                     WHERE ${leaseHeld({ id: "$1", version: "$2", owner: "$3" }, "a")}
                       AND c.generation = $4 AND c.seq = $5 AND c.status = 'pending'`),
        [fence.actorId, fence.leaseVersion, fence.worker, generation, seq],
      );
      if (!proof.rows[0]) throw new LockLostError(fence.actorId);
      await fn(tx);
      await this.settleCompensation(fence, leaseMs, generation, seq, "done", null, tx);
    });
  }

  /**
   * Cancels from any process. An idle actor (waiting, or runnable with no live lease) is
   * cancelled here and now — or moved to `compensating` when it has compensations to run.
   * A running one gets a request that its worker acts on (wakeup, or its next heartbeat).
   */
  async cancel(id: string, reason: string | null): Promise<CancelOutcome> {
    return this.c.db.transaction(async (tx) => {
      const { rows } = await tx.query<{
        status: ActorStatus;
        generation: number;
        lease_owner: string | null;
        live: boolean;
        cancel_requested_at: Date | null;
      }>(
        this.c.sql(`SELECT status, generation, lease_owner, cancel_requested_at,
                           (lease_owner IS NOT NULL AND lease_expires_at >= now()) AS live
                      FROM {schema}.actors WHERE id = $1 FOR UPDATE`),
        [id],
      );
      const a = rows[0];
      if (!a) return { kind: "not-found" };
      if (a.status === "cancelled") return { kind: "already-cancelled" };
      if (a.status === "completed" || a.status === "failed") return { kind: "finished", status: a.status };
      if (a.cancel_requested_at) {
        return a.live && a.lease_owner
          ? { kind: "requested", worker: a.lease_owner }
          : { kind: "compensating" };
      }
      await tx.query(
        this.c.sql(
          "UPDATE {schema}.actors SET cancel_requested_at = now(), cancel_reason = $2, updated_at = now() WHERE id = $1",
        ),
        [id, reason],
      );
      if (a.live && a.lease_owner) return { kind: "requested", worker: a.lease_owner };
      if (a.status === "compensating") return { kind: "compensating" };
      const { rows: comp } = await tx.query(
        this.c.sql(
          "SELECT 1 FROM {schema}.compensations WHERE actor_id = $1 AND generation = $2 AND status = 'pending' LIMIT 1",
        ),
        [id, a.generation],
      );
      await this.clearWaits(tx, id);
      if (comp.length > 0) {
        await tx.query(
          this.c
            .sql(`UPDATE {schema}.actors SET status = 'compensating', lease_owner = NULL, lease_expires_at = NULL,
                        sticky_worker = NULL, wait_seq = NULL, wait_kind = NULL, wait_name = NULL, wait_until = NULL
                       WHERE id = $1`),
          [id],
        );
        return { kind: "compensating" };
      }
      await this.finishCancelledInTx(tx, id, reason);
      return { kind: "cancelled" };
    });
  }

  /** Final step of a cancellation by the lease holder (fenced). */
  async finishCancelled(
    fence: Fence,
    reason: string | null,
    entries: readonly JournalEntry[],
    note = "",
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, 0);
      await this.finishCancelledInTx(tx, fence.actorId, reason, note);
    });
  }

  /** `note`: appended to the recorded message, e.g. which compensations failed or never ran. */
  private async finishCancelledInTx(
    tx: SqlClient,
    id: string,
    reason: string | null,
    note = "",
  ): Promise<void> {
    await tx.query(
      this.c.sql(`UPDATE {schema}.actors
                     SET status = 'cancelled', error = $2::jsonb, finished_at = now(), updated_at = now(),
                         lease_owner = NULL, lease_expires_at = NULL, sticky_worker = NULL,
                         wait_seq = NULL, wait_kind = NULL, wait_name = NULL, wait_until = NULL
                   WHERE id = $1`),
      [
        id,
        JSON.stringify({
          name: "ActorCancelledError",
          code: "CANCELLED",
          message: (reason ?? "cancelled") + note,
        }),
      ],
    );
    await this.clearWaits(tx, id);
    await tx.query(this.c.sql("DELETE FROM {schema}.subscriptions WHERE actor_id = $1"), [id]);
    await tx.query(this.c.sql("DELETE FROM {schema}.group_members WHERE actor_id = $1"), [id]);
  }

  private async clearWaits(tx: SqlClient, id: string): Promise<void> {
    await tx.query(this.c.sql("DELETE FROM {schema}.timers WHERE actor_id = $1"), [id]);
    await tx.query(
      this.c.sql(
        "UPDATE {schema}.subscriptions SET wait_seq = NULL WHERE actor_id = $1 AND wait_seq IS NOT NULL",
      ),
      [id],
    );
  }

  /**
   * Continue-as-new: archives the current journal, starts the next generation with the
   * new input and an empty journal. Subscriptions (with cursors), mailboxes and group
   * memberships are untouched, so nothing published across the boundary is missed.
   * The lease stays with the caller, who starts the new generation at once.
   */
  async recur(
    fence: Fence,
    entries: readonly JournalEntry[],
    leaseMs: number,
    input: Buffer,
    inputJson: string | null,
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await tx.query(
        this.c
          .sql(`INSERT INTO {schema}.journal_archive (actor_id, generation, seq, kind, name, result, error, created_at, txid)
                    SELECT j.actor_id, a.generation, j.seq, j.kind, j.name, j.result, j.error, j.created_at, j.txid
                      FROM {schema}.journal j JOIN {schema}.actors a ON a.id = j.actor_id WHERE j.actor_id = $1`),
        [fence.actorId],
      );
      await tx.query(this.c.sql("DELETE FROM {schema}.journal WHERE actor_id = $1"), [fence.actorId]);
      await tx.query(this.c.sql("DELETE FROM {schema}.compensations WHERE actor_id = $1"), [fence.actorId]);
      await tx.query(
        this.c
          .sql(`UPDATE {schema}.actors SET generation = generation + 1, journal_version = 0, input = $2, input_json = $3::jsonb,
                           updated_at = now() WHERE id = $1`),
        [fence.actorId, input, inputJson],
      );
    });
  }

  /** Actors this worker holds that someone asked to cancel (read with the heartbeat). */
  async cancelRequestsFor(worker: string): Promise<string[]> {
    const { rows } = await this.c.db.query<{ id: string }>(
      this.c.sql(
        `SELECT id FROM {schema}.actors WHERE lease_owner = $1 AND cancel_requested_at IS NOT NULL AND status IN ('running','compensating')`,
      ),
      [worker],
    );
    return rows.map((r) => r.id);
  }
}
