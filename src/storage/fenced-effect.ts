import { MS } from "./context.js";
import { ENTRIES_RECORDSET, entriesParam, type Fence, type JournalEntry } from "./rows.js";

/**
 * The first part of every one-statement effect written on an actor's behalf (publish,
 * send, group broadcast, emit): CTE `f` proves the lease (and extends it, bumping the
 * journal version for the op's own entry plus the buffered ones), CTE `loc` writes the
 * buffered now/random/uuid entries. Parameters $1–$6 are fencedParams(); the effect's own
 * parameters start at $7. `f` yields (id, generation, actor); no row = lease lost.
 */
export const FENCED_EFFECT = (extraWhere = "") => `
  f AS (
    UPDATE {schema}.actors SET journal_version = journal_version + 1 + $4::int, updated_at = now(),
           lease_expires_at = now() + ${MS("$5")}
     WHERE id = $1 AND lease_version = $2 AND lease_owner = $3 ${extraWhere}
    RETURNING id, generation, actor),
  loc AS (
    INSERT INTO {schema}.journal (actor_id, seq, kind, name, result, error)
    SELECT f.id, e.seq, e.kind, e.name, decode(e.result, 'base64'), e.error FROM f, ${ENTRIES_RECORDSET("$6")})`;

/** $1–$6 for FENCED_EFFECT. */
export function fencedParams(fence: Fence, locals: readonly JournalEntry[], leaseMs: number): unknown[] {
  return [fence.actorId, fence.leaseVersion, fence.worker, locals.length, leaseMs, entriesParam(locals)];
}
