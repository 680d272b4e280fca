import type { ActorStore } from "./actor-store.js";
import type { SchemaDb } from "./schema-db.js";
import type { SqlClient } from "./database.js";
import type { ActorStatus, Fence, JournalEntry } from "./rows.js";
import { clearWaits } from "./sql/clear-waits.js";

export type CancelOutcome =
  | { kind: "cancelled" } // it was idle: finished as cancelled right here
  | { kind: "compensating" } // it was idle with compensations: a worker will run them
  | { kind: "requested"; worker: string } // a worker runs it now: that worker will stop it
  | { kind: "already-cancelled" }
  | { kind: "finished"; status: ActorStatus }
  | { kind: "not-found" };

/**
 * Cancellation: the request from any process, the requests a worker's heartbeat picks up,
 * and the final step by the lease holder.
 */
export class CancellationStore {
  constructor(
    private readonly c: SchemaDb,
    private readonly actors: ActorStore,
  ) {}

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
      await clearWaits(this.c, tx, id);
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
    await clearWaits(this.c, tx, id);
    await tx.query(this.c.sql("DELETE FROM {schema}.subscriptions WHERE actor_id = $1"), [id]);
    await tx.query(this.c.sql("DELETE FROM {schema}.group_members WHERE actor_id = $1"), [id]);
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
