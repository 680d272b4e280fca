import { ValidationError } from "../api/errors.js";

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function validateSchemaName(schema: string): string {
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new ValidationError(
      `schema "${String(schema)}" is not a valid schema name (lowercase letters, digits and _, at most 63, not starting with a digit)`,
    );
  }
  return schema;
}

/** SQL text is written with `{schema}.table`; this binds it to the configured schema once. */
export function bindSchema(schema: string, text: string): string {
  return text.replaceAll("{schema}", `"${schema}"`);
}

/** Advisory-lock namespaces (first key of the two-int form) so troupe's locks never collide with each other. */
export const LOCK_NS = {
  migrate: 0x7470_0001,
  channel: 0x7470_0002,
} as const;

/*
 * LOCK ORDER — every statement and transaction that locks more than one of these takes them
 * in this order, so no two of them can wait for each other in a cycle (a Postgres deadlock,
 * 40P01, found only after deadlock_timeout: ~1 s of stall, then one side fails):
 *
 *   1. source advisory locks (sql/source-locks.ts), several always in hashtext order —
 *      except that a transaction already holding its own actor's row may take them
 *      (receive, subscribe, publish/send from an actor), see below;
 *   2. actor rows: one row by id, or several with FOR UPDATE SKIP LOCKED (claims, delivery,
 *      lease refresh in id order) so a multi-row lock never waits for a row;
 *   3. that actor's timer row (timers);
 *   4. that actor's subscriptions (cursors, wait_seq) and group memberships;
 *   5. message claims (messages.claimed_by), serialized per source by the exclusive lock of 1.
 *
 * Rows 3–5 are only ever changed by a statement that already holds the actor row of 2 —
 * FIRE (timer-store.ts) locks the actor FOR UPDATE before deleting the timer, DELIVER
 * (sql/deliver.ts) locks the actor and then clears its timer, park/finish/cancel/recur
 * update the actor row before its timer and subscriptions — so they never need an order
 * among themselves. An actor's row, held by its own execution's transaction, may be followed
 * by source locks (receive/subscribe exclusive, publish shared): the only transactions that
 * hold a source lock and then wait for an actor row are DELIVER (SKIP LOCKED: it never
 * waits) and a transactional step's commit fence on its own actor, which no other writer of
 * that actor holds while waiting for a source (its own execution is busy in the step).
 */
