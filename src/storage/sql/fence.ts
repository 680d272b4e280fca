import { MS } from "../schema-db.js";
import type { Fence } from "../rows.js";

/**
 * The lease fence, written once. A write on an actor's behalf counts only while its worker
 * still holds the lease it was given: same lease version (bumped by every claim, delivery
 * and takeover) and same owner. Every statement that proves a lease uses this predicate;
 * `a` is the actors table's alias, if the statement gives it one.
 */
export function leaseHeld(p: { id: string; version: string; owner: string }, a = ""): string {
  const col = (c: string) => (a ? `${a}.${c}` : c);
  return `${col("id")} = ${p.id} AND ${col("lease_version")} = ${p.version} AND ${col("lease_owner")} = ${p.owner}`;
}

/**
 * The fencing write every journal write starts with: proves the lease, extends it by $5 ms
 * and bumps the journal version by $4 (the number of entries the write adds). Parameters
 * $1–$5 are fenceParams(). No row back = the lease is gone. `extraWhere` adds a condition
 * the effect needs at the same moment (e.g. "the target actor exists"). It also says whether a
 * cancel was requested meanwhile, so the execution stops at once instead of waiting for the
 * cancel's wakeup (which may come after it started its next step).
 */
export const FENCE = (extraWhere = "") => `
  UPDATE {schema}.actors SET journal_version = journal_version + $4::int, updated_at = now(),
         lease_expires_at = now() + ${MS("$5")}
   WHERE ${leaseHeld({ id: "$1", version: "$2", owner: "$3" })} ${extraWhere}
  RETURNING id, generation, actor, journal_version, cancel_requested_at IS NOT NULL AS cancel_requested`;

/** $1–$5 for FENCE: the fence, how many journal entries the write adds, the lease to extend to. */
export function fenceParams(fence: Fence, entries: number, leaseMs: number): unknown[] {
  return [fence.actorId, fence.leaseVersion, fence.worker, entries, leaseMs];
}
