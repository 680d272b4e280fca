import type { SchemaDb } from "./schema-db.js";

/**
 * Completes a wait whose deadline passed: records the completion (kind/name the wait
 * registered, result NULL = "timed out"/"slept") at the waiting position, deletes the timer
 * and makes the actor runnable, all in one statement. A wait already completed by someone
 * else (a delivered message) matches nothing; its due timer, if still there, is dropped.
 *
 * Lock order (LOCK_ORDER in sql.ts): the actor row first (`w`, FOR UPDATE), then its timer
 * (`t` reads `w`, so it runs once the row lock is held). Deleting the timer first, as this
 * statement once did, deadlocked against DELIVER, which locks the actor and then deletes
 * its timer.
 */
const FIRE = `
  WITH w AS (
    SELECT x.id, x.wait_kind, x.wait_name FROM {schema}.actors x
     WHERE x.id = $1 AND EXISTS (SELECT 1 FROM {schema}.timers WHERE actor_id = $1 AND seq = $2 AND due_at <= now())
       FOR UPDATE),
  t AS (
    -- due_at: a stale local timer (armed for an earlier wait at the same seq, e.g. before a
    -- recur) must never fire a later wait before its own deadline
    DELETE FROM {schema}.timers WHERE actor_id IN (SELECT id FROM w) AND seq = $2 AND due_at <= now()
    RETURNING actor_id),
  a AS (
    -- the WHERE is re-checked on the newest row version: a concurrent delivery wins or loses cleanly
    UPDATE {schema}.actors x SET status = 'running', wait_seq = NULL, wait_kind = NULL, wait_name = NULL, wait_until = NULL,
           journal_version = x.journal_version + 1, updated_at = now()
      FROM w JOIN t ON t.actor_id = w.id WHERE x.id = w.id AND x.status = 'waiting' AND x.wait_seq = $2
    RETURNING x.id, w.wait_kind AS kind, w.wait_name AS name),
  s AS (
    UPDATE {schema}.subscriptions SET wait_seq = NULL WHERE actor_id IN (SELECT id FROM a)),
  j AS (
    INSERT INTO {schema}.journal (actor_id, seq, kind, name, result) SELECT id, $2, kind, name, NULL FROM a)
  SELECT id FROM a`;

export class TimerStore {
  constructor(private readonly c: SchemaDb) {}

  async due(limit: number): Promise<{ actorId: string; seq: number }[]> {
    const { rows } = await this.c.db.query<{ actor_id: string; seq: number }>(
      this.c.sql("SELECT actor_id, seq FROM {schema}.timers WHERE due_at <= now() ORDER BY due_at LIMIT $1"),
      [limit],
    );
    return rows.map((r) => ({ actorId: r.actor_id, seq: Number(r.seq) }));
  }

  /** The deadline of the actor's pending timer at `seq`, if it has one. */
  async dueAt(actorId: string, seq: number): Promise<Date | null> {
    const { rows } = await this.c.db.query<{ due_at: Date }>(
      this.c.sql("SELECT due_at FROM {schema}.timers WHERE actor_id = $1 AND seq = $2"),
      [actorId, seq],
    );
    return rows[0] ? new Date(rows[0].due_at) : null;
  }

  /** True when this call completed the wait (the actor is now runnable). */
  async fire(actorId: string, seq: number): Promise<boolean> {
    const { rows } = await this.c.db.query(this.c.sql(FIRE), [actorId, seq]);
    return rows.length > 0;
  }
}
