import { LockLostError, type RecordedError } from "../api/errors.js";
import type { ActorStore } from "./actor-store.js";
import { MS, type SchemaDb } from "./schema-db.js";
import type { SqlClient } from "./database.js";
import type { CompensationOutcome, CompensationRecord, Fence, JournalEntry } from "./rows.js";
import { clearWaits } from "./sql/clear-waits.js";
import { leaseHeld } from "./sql/fence.js";

export interface PendingCompensation {
  seq: number;
  name: string;
}

/**
 * Saga compensations: registered with their step, listed newest first to run, settled once
 * each (done, failed or skipped), and the actor's move into the compensating state.
 */
export class SagaStore {
  constructor(
    private readonly c: SchemaDb,
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
    return this.c.db.transaction(async (tx) => {
      const written = await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await this.addCompensation(tx, fence.actorId, generation, seq, name);
      return written;
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
      await clearWaits(this.c, tx, fence.actorId);
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
}
