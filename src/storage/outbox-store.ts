import { optionsArg } from "../arguments.js";
import { LockLostError, ValidationError } from "../api/errors.js";
import {
  prepareEvent,
  toCloudEvent,
  type CloudEventInput,
  type PreparedEvent,
} from "../outbox/cloudevent.js";
import {
  checkEventId,
  checkIds,
  DEFAULT_SOURCE,
  type OutboxEntry,
  type OutboxStatus,
} from "../outbox/outbox-entry.js";
import { MS, type SchemaDb } from "./schema-db.js";
import type { SqlClient } from "./database.js";
import { FENCED_EFFECT, fencedParams } from "./fenced-effect.js";
import { jsonResultSql } from "./sql/envelope.js";
import type { Fence, JournalEntry } from "./rows.js";

export interface OutboxStoreOptions {
  /** Largest event (attributes + data) accepted by emit (default 1 MiB). */
  maxEventBytes?: number;
}

const MAX_ERROR_LENGTH = 2000;

/**
 * ctx.emit in ONE statement, like publishFromActor: prove the lease (and extend it), write
 * the buffered entries, the outbox row (tied to its journal position) and the emit's
 * own journal entry. Either all of it commits or none of it; zero fenced rows = lease lost.
 * An event id already in the outbox is not inserted again, but the emit is still journaled.
 */
const EMIT_FROM_ACTOR = `
  WITH ${FENCED_EFFECT("AND ($12::int IS NULL OR generation = $12)")},
  ins AS (
    INSERT INTO {schema}.outbox (event_id, actor_id, event, data, origin_generation, origin_seq)
    SELECT $8, f.id,
           CASE WHEN $9::jsonb ? 'source' THEN $9::jsonb
                ELSE $9::jsonb || jsonb_build_object('source', 'troupe://' || f.actor || '/' || f.id) END,
           $10, f.generation, $7
      FROM f
    ON CONFLICT DO NOTHING
    RETURNING id),
  j AS (
    INSERT INTO {schema}.journal (actor_id, seq, kind, name, result)
    SELECT f.id, $7, 'emit', $11, ${jsonResultSql("json_build_object('id', $8::text)")} FROM f)
  SELECT (SELECT count(*)::int FROM f) AS fenced, (SELECT count(*)::int FROM ins) AS inserted`;

const CLAIM = `
  UPDATE {schema}.outbox o
     SET status = 'processing', locked_by = $1, locked_at = now(), attempts = o.attempts + 1
    FROM (SELECT id FROM {schema}.outbox
           WHERE status = 'pending' AND next_attempt_at <= now()
           ORDER BY next_attempt_at, id
           LIMIT $2 FOR UPDATE SKIP LOCKED) c
   WHERE o.id = c.id
  RETURNING o.*`;

function toDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v : new Date(v as string);
}

function toBuffer(v: unknown): Buffer | null {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v;
  const u = v as Uint8Array;
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function entryFromRow(r: Record<string, any>): OutboxEntry {
  const event = (typeof r.event === "string" ? JSON.parse(r.event) : r.event) as Record<string, unknown>;
  return {
    outboxId: String(r.id),
    event: toCloudEvent(event, toBuffer(r.data)),
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: toDate(r.next_attempt_at)!,
    lockedBy: r.locked_by ?? null,
    lockedAt: toDate(r.locked_at),
    lastError: r.last_error ?? null,
    actorId: r.actor_id ?? null,
    createdAt: toDate(r.created_at)!,
    sentAt: toDate(r.sent_at),
  };
}

/**
 * The transactional outbox: events written in the same statement as the actor's journal
 * entry, then relayed to a sink by claiming rows (SKIP LOCKED), with retries, dead letters
 * and reclaim of rows whose relay died mid-send.
 */
export class OutboxStore {
  private readonly maxEventBytes: number;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly c: SchemaDb,
    opts: OutboxStoreOptions = {},
  ) {
    this.maxEventBytes = opts.maxEventBytes ?? 1024 * 1024;
  }

  /** Validates an event without writing it (throws ValidationError / PayloadTooLargeError). */
  prepare(event: CloudEventInput | PreparedEvent, defaultSource?: string): PreparedEvent {
    return prepareEvent(event, {
      maxBytes: this.maxEventBytes,
      ...(defaultSource === undefined ? {} : { defaultSource }),
    });
  }

  /** Called after an emit committed (a relay in this process uses it to send at once). */
  onEmitted(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emitted(): void {
    for (const l of this.listeners) l();
  }

  // ---- writing events ------------------------------------------------------------------

  /**
   * ctx.emit: fence + buffered `buffered` + outbox row + journal entry `emit`/type at `op.seq`
   * (result `{ id }`), in one statement. `op.generation`, when given, must match the actor's.
   * Throws LockLostError when the lease is gone (nothing is written).
   */
  async emitFromActor(
    fence: Fence,
    buffered: readonly JournalEntry[],
    op: { seq: number; leaseMs: number; generation?: number },
    event: CloudEventInput | PreparedEvent,
  ): Promise<{ id: string }> {
    const p = this.prepare(event);
    const { rows } = await this.c.db.query<{ fenced: number; inserted: number }>(
      this.c.sql(EMIT_FROM_ACTOR),
      [
        ...fencedParams(fence, buffered, op.leaseMs),
        op.seq,
        p.id,
        JSON.stringify(p.attributes),
        p.bytes,
        p.type,
        op.generation ?? null,
      ],
    );
    if (!rows[0] || Number(rows[0].fenced) === 0) throw new LockLostError(fence.actorId);
    if (Number(rows[0].inserted) > 0) this.emitted();
    return { id: p.id };
  }

  /**
   * tx.emit: an outbox row on a transactional step's own transaction (it exists iff the step
   * commits). `origin.index` tells several events of one step apart. Call `notifyEmitted()`
   * after the commit. An event id already in the outbox is not written again.
   */
  async emitInTransaction(
    tx: SqlClient,
    origin: { actorId: string; actorName: string; generation: number; seq: number; index: number },
    event: PreparedEvent,
  ): Promise<{ id: string; inserted: boolean }> {
    const attributes =
      event.attributes.source === undefined
        ? { ...event.attributes, source: `troupe://${origin.actorName}/${origin.actorId}` }
        : event.attributes;
    const { rowCount } = await tx.query(
      this.c.sql(`
        INSERT INTO {schema}.outbox (event_id, actor_id, event, data, origin_generation, origin_seq, origin_index)
        VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)
        ON CONFLICT DO NOTHING`),
      [
        event.id,
        origin.actorId,
        JSON.stringify(attributes),
        event.bytes,
        origin.generation,
        origin.seq,
        origin.index,
      ],
    );
    return { id: event.id, inserted: rowCount > 0 };
  }

  /** After a transaction with tx.emit rows committed: lets a relay in this process send at once. */
  notifyEmitted(): void {
    this.emitted();
  }

  /**
   * An event from outside any actor (source defaults to `troupe://troupe`). An id already in
   * the outbox is not written again: `duplicate` tells.
   */
  async emit(event: CloudEventInput | PreparedEvent): Promise<{ id: string; duplicate: boolean }> {
    const p = this.prepare(event, DEFAULT_SOURCE);
    // An event prepared elsewhere (without a default source) still gets one.
    const attributes =
      p.attributes.source === undefined ? { ...p.attributes, source: DEFAULT_SOURCE } : p.attributes;
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        INSERT INTO {schema}.outbox (event_id, event, data) VALUES ($1, $2::jsonb, $3)
        ON CONFLICT (event_id) DO NOTHING`),
      [p.id, JSON.stringify(attributes), p.bytes],
    );
    if (rowCount > 0) this.emitted();
    return { id: p.id, duplicate: rowCount === 0 };
  }

  // ---- relaying ------------------------------------------------------------------------

  /**
   * Takes up to `limit` due pending rows for `relayId` (SKIP LOCKED: concurrent relays get
   * disjoint rows), marking them processing and counting the attempt.
   */
  async claim(relayId: string, limit: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    const { rows } = await this.c.db.query(this.c.sql(CLAIM), [relayId, limit]);
    return rows.map(entryFromRow).sort((a, b) => Number(a.outboxId) - Number(b.outboxId));
  }

  /** Keeps claimed rows from being reclaimed while their sends are still running. */
  async touch(relayId: string, outboxIds: readonly string[]): Promise<number> {
    if (outboxIds.length === 0) return 0;
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.outbox SET locked_at = now()
         WHERE id = ANY($2::bigint[]) AND status = 'processing' AND locked_by = $1`),
      [relayId, outboxIds],
    );
    return rowCount;
  }

  /**
   * Records a successful send. `attempt` (the row's attempts after the claim) fences the
   * update to this very claim. False when the row was reclaimed meanwhile.
   */
  async markSent(outboxId: string, relayId: string, attempt?: number): Promise<boolean> {
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.outbox
           SET status = 'sent', sent_at = now(), locked_by = NULL, locked_at = NULL
         WHERE id = $1 AND status = 'processing' AND locked_by = $2 AND ($3::int IS NULL OR attempts = $3)`),
      [outboxId, relayId, attempt ?? null],
    );
    return rowCount > 0;
  }

  /**
   * Records a failed send: pending again at `nextAttemptAt`, or dead (a dead letter) when it
   * is null. False when the row was reclaimed meanwhile.
   */
  async markFailed(
    outboxId: string,
    relayId: string,
    error: string,
    nextAttemptAt: Date | null,
    attempt?: number,
  ): Promise<boolean> {
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.outbox
           SET status = CASE WHEN $4::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
               next_attempt_at = COALESCE($4::timestamptz, next_attempt_at),
               last_error = $3, locked_by = NULL, locked_at = NULL
         WHERE id = $1 AND status = 'processing' AND locked_by = $2 AND ($5::int IS NULL OR attempts = $5)`),
      [outboxId, relayId, error.slice(0, MAX_ERROR_LENGTH), nextAttemptAt, attempt ?? null],
    );
    return rowCount > 0;
  }

  /** Hands a claimed row back untried (a relay stopping mid-send): pending now, the attempt not counted. */
  async release(outboxId: string, relayId: string, attempt?: number): Promise<boolean> {
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.outbox
           SET status = 'pending', attempts = greatest(attempts - 1, 0), next_attempt_at = now(),
               locked_by = NULL, locked_at = NULL
         WHERE id = $1 AND status = 'processing' AND locked_by = $2 AND ($3::int IS NULL OR attempts = $3)`),
      [outboxId, relayId, attempt ?? null],
    );
    return rowCount > 0;
  }

  /**
   * Rows left in processing longer than `olderThanMs` (their relay crashed or hung) become
   * pending again — or dead once they used `maxAttempts`, so an event that kills its relay
   * cannot loop forever. Returns how many were reclaimed.
   */
  async reclaimStuck(olderThanMs: number, maxAttempts?: number): Promise<number> {
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.outbox o
           SET status = CASE WHEN $2::int IS NOT NULL AND o.attempts >= $2 THEN 'dead' ELSE 'pending' END,
               last_error = 'relay ' || coalesce(o.locked_by, '?') || ' did not finish sending (attempt ' || o.attempts || ')',
               next_attempt_at = now(), locked_by = NULL, locked_at = NULL
          FROM (SELECT id FROM {schema}.outbox
                 WHERE status = 'processing' AND locked_at < now() - ${MS("$1")}
                 FOR UPDATE SKIP LOCKED) s
         WHERE o.id = s.id`),
      [olderThanMs, maxAttempts ?? null],
    );
    return rowCount;
  }

  /** Retention: deletes up to `limit` sent rows older than `olderThanMs`. Returns how many. */
  async deleteSent(olderThanMs: number, limit = 1000): Promise<number> {
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        DELETE FROM {schema}.outbox WHERE id IN (
          SELECT id FROM {schema}.outbox WHERE status = 'sent' AND sent_at < now() - ${MS("$1")} LIMIT $2)`),
      [olderThanMs, limit],
    );
    return rowCount;
  }

  // ---- inspecting and operating ---------------------------------------------------------

  /** One event by its CloudEvent id. */
  async get(eventId: string): Promise<OutboxEntry | null> {
    checkEventId(eventId, "outbox.get event id");
    const { rows } = await this.c.db.query(this.c.sql("SELECT * FROM {schema}.outbox WHERE event_id = $1"), [
      eventId,
    ]);
    return rows[0] ? entryFromRow(rows[0]) : null;
  }

  /** Dead letters, oldest first; pass `nextCursor` back for the next page. */
  async deadLetters(options?: { limit?: number; cursor?: string }): Promise<{
    items: OutboxEntry[];
    nextCursor?: string;
  }> {
    const opts = optionsArg(options, "deadLetters options");
    const limit = opts.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new ValidationError("limit must be an integer from 1 to 1000");
    if (opts.cursor !== undefined && (typeof opts.cursor !== "string" || !/^\d{1,18}$/.test(opts.cursor)))
      throw new ValidationError(`cursor "${opts.cursor}" is not a cursor returned by deadLetters()`);
    const { rows } = await this.c.db.query(
      this.c.sql(`
        SELECT * FROM {schema}.outbox WHERE status = 'dead' AND ($2::bigint IS NULL OR id > $2)
         ORDER BY id LIMIT $1`),
      [limit + 1, opts.cursor ?? null],
    );
    const items = rows.slice(0, limit).map(entryFromRow);
    const last = items.at(-1);
    return rows.length > limit && last ? { items, nextCursor: last.outboxId } : { items };
  }

  /**
   * Dead letters back to pending with their attempts reset (by CloudEvent id, or "all").
   * The last error is kept for reference. Returns how many were re-driven.
   */
  async redrive(eventIds: readonly string[] | "all"): Promise<{ count: number }> {
    const all = eventIds === "all";
    const ids = all ? [] : checkIds(eventIds, "redrive");
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.outbox SET status = 'pending', attempts = 0, next_attempt_at = now(),
               locked_by = NULL, locked_at = NULL
         WHERE status = 'dead' AND ($1 OR event_id = ANY($2::text[]))`),
      [all, ids],
    );
    if (rowCount > 0) this.emitted();
    return { count: rowCount };
  }

  /** How many events are in each status (all four present). */
  async counts(): Promise<Record<OutboxStatus, number>> {
    const { rows } = await this.c.db.query<{ status: OutboxStatus; n: number }>(
      this.c.sql("SELECT status, count(*)::int AS n FROM {schema}.outbox GROUP BY status"),
    );
    const out: Record<OutboxStatus, number> = { pending: 0, processing: 0, sent: 0, dead: 0 };
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }
}
