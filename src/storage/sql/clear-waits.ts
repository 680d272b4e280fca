import type { SchemaDb } from "../schema-db.js";
import type { SqlClient } from "../database.js";

/**
 * Inside `tx`: drops the actor's timers and unregisters its receive waits — what compensating
 * and cancelling both do before the actor stops waiting (its subscriptions stay, with cursors).
 */
export async function clearWaits(c: SchemaDb, tx: SqlClient, id: string): Promise<void> {
  await tx.query(c.sql("DELETE FROM {schema}.timers WHERE actor_id = $1"), [id]);
  await tx.query(
    c.sql("UPDATE {schema}.subscriptions SET wait_seq = NULL WHERE actor_id = $1 AND wait_seq IS NOT NULL"),
    [id],
  );
}
