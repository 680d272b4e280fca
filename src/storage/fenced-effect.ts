import { ENTRIES_RECORDSET, entriesParam, type Fence, type JournalEntry } from "./rows.js";
import { FENCE, fenceParams } from "./sql/fence.js";

/**
 * The first part of every one-statement effect written on an actor's behalf (publish,
 * send, group broadcast, emit): CTE `f` is the lease fence (sql/fence.ts; it bumps the
 * journal version for the op's own entry plus the buffered ones), CTE `loc` writes the
 * buffered now/random/uuid entries. Parameters $1–$6 are fencedParams(); the effect's own
 * parameters start at $7. `f` yields (id, generation, actor, journal_version); no row = lease lost.
 */
export const FENCED_EFFECT = (extraWhere = "") => `
  f AS (${FENCE(extraWhere)}),
  loc AS (
    INSERT INTO {schema}.journal (actor_id, seq, kind, name, result, error)
    SELECT f.id, e.seq, e.kind, e.name, decode(e.result, 'base64'), e.error FROM f, ${ENTRIES_RECORDSET("$6")})`;

/** $1–$6 for FENCED_EFFECT: the buffered entries plus the op's own one are counted. */
export function fencedParams(fence: Fence, buffered: readonly JournalEntry[], leaseMs: number): unknown[] {
  return [...fenceParams(fence, buffered.length + 1, leaseMs), entriesParam(buffered)];
}
