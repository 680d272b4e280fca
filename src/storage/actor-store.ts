import { DuplicateActorError, LockLostError, type RecordedError } from "../api/errors.js";
import { MS, type SchemaDb } from "./schema-db.js";
import { buildListQuery, encodeCursor, type ListFilter } from "./list-query.js";
import type { SqlClient } from "./database.js";
import {
  ENTRIES_RECORDSET,
  actorFromRow,
  entriesParam,
  type ActorRow,
  type Fence,
  type JournalEntry,
} from "./rows.js";
import { FENCED_EFFECT } from "./fenced-effect.js";
import { FENCE, fenceParams, leaseHeld } from "./sql/fence.js";

/** Internal signal: a cancel was requested while the actor tried to wait. */
export class CancelRequested extends Error {
  constructor(readonly actorId: string) {
    super(`cancel requested for ${actorId}`);
  }
}

export interface NewActor {
  id: string;
  actor: string;
  input: Buffer;
  inputJson: string | null;
  uniqueKey?: string | undefined;
  idempotencyKey?: string | undefined;
  context?: Record<string, unknown> | null | undefined;
}

export interface WaitSpec {
  seq: number;
  kind: string;
  name: string;
  /** Deadline: a timer row fires the wait at this time. */
  until?: Date | undefined;
}

// Only actor types the claiming worker knows ($4): an unknown type is left for a worker that has it.
const CLAIM = `
  UPDATE {schema}.actors a
     SET lease_owner = $1, lease_expires_at = now() + ${MS("$2")}, lease_version = a.lease_version + 1, updated_at = now()
    FROM (SELECT id FROM {schema}.actors
           WHERE status IN ('running','compensating') AND (lease_expires_at IS NULL OR lease_expires_at < now())
             AND actor = ANY($4::text[])
           ORDER BY lease_expires_at NULLS FIRST, started_at
           LIMIT $3 FOR UPDATE SKIP LOCKED) c
   WHERE a.id = c.id
  RETURNING a.*`;

// SKIP LOCKED: never queue behind a row another transaction holds (a stalled worker must not stall us).
const CLAIM_ONE = `
  UPDATE {schema}.actors a
     SET lease_owner = $2, lease_expires_at = now() + ${MS("$3")}, lease_version = a.lease_version + 1, updated_at = now()
    FROM (SELECT id FROM {schema}.actors
           WHERE id = $1 AND status IN ('running','compensating') AND (lease_expires_at IS NULL OR lease_expires_at < now())
             AND actor = ANY($4::text[])
           FOR UPDATE SKIP LOCKED) c
   WHERE a.id = c.id
  RETURNING a.*`;

/**
 * Fenced journal append in ONE statement: the fence (sql/fence.ts) proves the lease and
 * extends it, the entries are inserted only if it matched. Zero rows = the lease is gone.
 */
const APPEND = `WITH ${FENCED_EFFECT()} SELECT journal_version, cancel_requested FROM f`;

/** The fence alone, for a transaction that writes more after it (its entries, then its effects). */
const FENCE_ONLY = FENCE();

const INSERT_ENTRIES = `
  INSERT INTO {schema}.journal (actor_id, seq, kind, name, result, error)
  SELECT $1, e.seq, e.kind, e.name, decode(e.result, 'base64'), e.error FROM ${ENTRIES_RECORDSET("$2")}`;

/** What a fenced journal write reports: the new journal version, and whether a cancel is pending. */
export interface Fenced {
  journalVersion: number;
  cancelRequested: boolean;
}

interface FencedRow {
  journal_version: number | string;
  cancel_requested: boolean;
}

const fenced = (r: FencedRow): Fenced => ({
  journalVersion: Number(r.journal_version),
  cancelRequested: r.cancel_requested === true,
});

export class ActorStore {
  constructor(private readonly c: SchemaDb) {}

  /** Inserts a new actor; an existing id returns the existing row (idempotent spawn). */
  async create(a: NewActor): Promise<{ row: ActorRow; created: boolean }> {
    try {
      const { rows } = await this.c.db.query(
        this.c.sql(`
          INSERT INTO {schema}.actors (id, actor, status, input, input_json, unique_key, idempotency_key, context)
          VALUES ($1, $2, 'running', $3, $4::jsonb, $5, $6, $7::jsonb)
          ON CONFLICT (id) DO NOTHING
          RETURNING *`),
        [
          a.id,
          a.actor,
          a.input,
          a.inputJson,
          a.uniqueKey ?? null,
          a.idempotencyKey ?? null,
          a.context ? JSON.stringify(a.context) : null,
        ],
      );
      if (rows[0]) return { row: actorFromRow(rows[0]), created: true };
    } catch (err) {
      const e = err as { code?: string; constraint?: string; message?: string };
      if (
        e.code === "23505" &&
        a.uniqueKey &&
        (e.constraint === "actors_unique_key" || e.message?.includes("actors_unique_key"))
      ) {
        const holder = await this.c.db.query<{ id: string }>(
          this.c.sql(
            `SELECT id FROM {schema}.actors WHERE unique_key = $1 AND status IN ('running','waiting','compensating')`,
          ),
          [a.uniqueKey],
        );
        throw new DuplicateActorError(a.uniqueKey, holder.rows[0]?.id ?? "?");
      }
      if (e.code === "23505" && a.idempotencyKey && e.message?.includes("actors_idempotency_key")) {
        const first = await this.byIdempotencyKey(a.idempotencyKey);
        if (first) return { row: first, created: false };
      }
      throw err;
    }
    const existing = await this.get(a.id);
    if (!existing) throw new Error(`actor ${a.id} vanished during spawn`); // deleted between statements
    return { row: existing, created: false };
  }

  async byIdempotencyKey(key: string): Promise<ActorRow | null> {
    const { rows } = await this.c.db.query(
      this.c.sql("SELECT * FROM {schema}.actors WHERE idempotency_key = $1"),
      [key],
    );
    return rows[0] ? actorFromRow(rows[0]) : null;
  }

  async get(id: string): Promise<ActorRow | null> {
    const { rows } = await this.c.db.query(this.c.sql("SELECT * FROM {schema}.actors WHERE id = $1"), [id]);
    return rows[0] ? actorFromRow(rows[0]) : null;
  }

  /** A page of actors matching `filter`, newest first, with a cursor for the next page. */
  async list(filter: ListFilter): Promise<{ rows: ActorRow[]; nextCursor?: string }> {
    const q = buildListQuery(filter);
    const { rows } = await this.c.db.query<Record<string, any>>(
      this.c.adHoc(`SELECT *, started_at::text AS started_key FROM {schema}.actors ${q.where}
                   ORDER BY started_at DESC, id DESC LIMIT ${q.limit + 1}`),
      q.params,
    );
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    const out: { rows: ActorRow[]; nextCursor?: string } = { rows: page.map(actorFromRow) };
    if (rows.length > q.limit && last)
      out.nextCursor = encodeCursor(last.started_key as string, last.id as string);
    return out;
  }

  /** Takes the lease of up to `limit` runnable actors (free or expired lease), skipping rows others are claiming. */
  async claimRunnable(
    worker: string,
    leaseMs: number,
    limit: number,
    types: readonly string[],
  ): Promise<ActorRow[]> {
    if (limit <= 0 || types.length === 0) return [];
    const { rows } = await this.c.db.query(this.c.sql(CLAIM), [worker, leaseMs, limit, types]);
    return rows.map(actorFromRow);
  }

  /** Takes the lease of one actor if it is runnable and free. */
  async claim(
    id: string,
    worker: string,
    leaseMs: number,
    types: readonly string[],
  ): Promise<ActorRow | null> {
    const { rows } = await this.c.db.query(this.c.sql(CLAIM_ONE), [id, worker, leaseMs, types]);
    return rows[0] ? actorFromRow(rows[0]) : null;
  }

  /** Appends journal entries on behalf of a lease holder: the new journal version, and whether a cancel is pending. */
  async append(fence: Fence, entries: readonly JournalEntry[], leaseMs: number): Promise<Fenced> {
    const { rows } = await this.c.db.query<FencedRow>(this.c.sql(APPEND), [
      ...fenceParams(fence, entries.length, leaseMs),
      entriesParam(entries),
    ]);
    if (!rows[0]) throw new LockLostError(fence.actorId);
    return fenced(rows[0]);
  }

  /**
   * Runs `fn` inside a transaction that first proves the lease (locking the actor row for
   * the transaction) and finally appends `entries()`. Effects of `fn` commit with the journal or not at all.
   */
  async appendInTransaction<T>(
    fence: Fence,
    leaseMs: number,
    fn: (tx: SqlClient) => Promise<T>,
    entries: (value: T) => readonly JournalEntry[],
  ): Promise<{ value: T } & Fenced> {
    return this.c.db.transaction(async (tx) => {
      // A plain read, not a row lock: the row stays free while user code runs (a stalled
      // worker must not block a takeover); the fence that counts is taken at commit time.
      const proof = await tx.query(
        this.c.sql(
          `SELECT 1 FROM {schema}.actors WHERE ${leaseHeld({ id: "$1", version: "$2", owner: "$3" })}`,
        ),
        [fence.actorId, fence.leaseVersion, fence.worker],
      );
      if (!proof.rows[0]) throw new LockLostError(fence.actorId);
      const value = await fn(tx);
      const list = entries(value);
      return { value, ...(await this.fenceAndInsert(tx, fence, list, leaseMs)) };
    });
  }

  /** Inside a transaction: fence (bumping the journal version) and insert entries. */
  async fenceAndInsert(
    tx: SqlClient,
    fence: Fence,
    entries: readonly JournalEntry[],
    leaseMs: number,
  ): Promise<Fenced> {
    const { rows } = await tx.query<FencedRow>(
      this.c.sql(FENCE_ONLY),
      fenceParams(fence, entries.length, leaseMs),
    );
    if (!rows[0]) throw new LockLostError(fence.actorId);
    if (entries.length > 0)
      await tx.query(this.c.sql(INSERT_ENTRIES), [fence.actorId, entriesParam(entries)]);
    return fenced(rows[0]);
  }

  /**
   * Parks the actor at a wait: status waiting, lease released, this worker remembered as
   * the one its execution is parked on (sticky_worker), and a timer when the wait has a deadline.
   */
  async park(fence: Fence, wait: WaitSpec, entries: readonly JournalEntry[]): Promise<number> {
    return this.c.db.transaction((tx) => this.parkInTx(tx, fence, wait, entries));
  }

  /** The park writes, inside a caller's transaction (receive checks for pending messages first). */
  async parkInTx(
    tx: SqlClient,
    fence: Fence,
    wait: WaitSpec,
    entries: readonly JournalEntry[],
  ): Promise<number> {
    if (entries.length > 0) await this.fenceAndInsert(tx, fence, entries, 0);
    const { rows } = await tx.query<{ journal_version: number }>(
      this.c.sql(`
        UPDATE {schema}.actors
           SET status = 'waiting', wait_seq = $3, wait_kind = $4, wait_name = $5, wait_until = $6,
               lease_owner = NULL, lease_expires_at = NULL, sticky_worker = $7, updated_at = now()
         WHERE ${leaseHeld({ id: "$1", version: "$2", owner: "$7" })} AND cancel_requested_at IS NULL
        RETURNING journal_version`),
      [fence.actorId, fence.leaseVersion, wait.seq, wait.kind, wait.name, wait.until ?? null, fence.worker],
    );
    if (!rows[0]) {
      // A cancel request that raced the wait: do not park (nobody would act on it); stop for cancellation.
      const { rows: why } = await tx.query(
        this.c.sql(
          "SELECT 1 FROM {schema}.actors WHERE id = $1 AND lease_version = $2 AND cancel_requested_at IS NOT NULL",
        ),
        [fence.actorId, fence.leaseVersion],
      );
      if (why[0]) throw new CancelRequested(fence.actorId);
      throw new LockLostError(fence.actorId);
    }
    if (wait.until) {
      await tx.query(
        this.c.sql(`
          INSERT INTO {schema}.timers (actor_id, seq, due_at) VALUES ($1, $2, $3)
          ON CONFLICT (actor_id) DO UPDATE SET seq = EXCLUDED.seq, due_at = EXCLUDED.due_at`),
        [fence.actorId, wait.seq, wait.until],
      );
    }
    return Number(rows[0].journal_version);
  }

  /** Records the end of an actor and drops everything that only lives while it runs. */
  async finish(
    fence: Fence,
    outcome:
      { status: "completed"; output: Buffer } | { status: "failed" | "cancelled"; error: RecordedError },
    entries: readonly JournalEntry[],
  ): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.fenceAndInsert(tx, fence, entries, 0);
      await tx.query(
        this.c.sql(`
          UPDATE {schema}.actors
             SET status = $2, output = $3, error = $4::jsonb, finished_at = now(), updated_at = now(),
                 lease_owner = NULL, lease_expires_at = NULL, sticky_worker = NULL,
                 wait_seq = NULL, wait_kind = NULL, wait_name = NULL, wait_until = NULL
           WHERE id = $1`),
        [
          fence.actorId,
          outcome.status,
          outcome.status === "completed" ? outcome.output : null,
          outcome.status === "completed" ? null : JSON.stringify(outcome.error),
        ],
      );
      await tx.query(this.c.sql("DELETE FROM {schema}.timers WHERE actor_id = $1"), [fence.actorId]);
      await tx.query(this.c.sql("DELETE FROM {schema}.subscriptions WHERE actor_id = $1"), [fence.actorId]);
      await tx.query(this.c.sql("DELETE FROM {schema}.group_members WHERE actor_id = $1"), [fence.actorId]);
    });
  }

  /** Hands a running actor back (graceful stop): it stays runnable for any worker. */
  async release(fence: Fence): Promise<void> {
    await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.actors SET lease_owner = NULL, lease_expires_at = NULL, sticky_worker = NULL, updated_at = now()
         WHERE ${leaseHeld({ id: "$1", version: "$2", owner: "$3" })}`),
      [fence.actorId, fence.leaseVersion, fence.worker],
    );
  }

  /**
   * Extends the leases of the executions this worker really runs (by id AND lease version):
   * a lease it no longer backs with a live execution is left to expire.
   */
  async refreshLeases(worker: string, leaseMs: number, held: readonly Fence[]): Promise<number> {
    if (held.length === 0) return 0;
    // Rows locked in id order and SKIP LOCKED: a row busy in a journal write is skipped
    // (that write extends the lease itself), and two refreshes can never deadlock.
    const { rowCount } = await this.c.db.query(
      this.c.sql(`
        UPDATE {schema}.actors a SET lease_expires_at = now() + ${MS("$2")}
          FROM (SELECT id FROM {schema}.actors
                 WHERE lease_owner = $1 AND status IN ('running','compensating')
                   AND (id, lease_version) IN (SELECT * FROM unnest($3::text[], $4::bigint[]))
                 ORDER BY id FOR UPDATE SKIP LOCKED) c
         WHERE a.id = c.id`),
      [worker, leaseMs, held.map((f) => f.actorId), held.map((f) => f.leaseVersion)],
    );
    return rowCount;
  }

  /** Actors whose lease ran out (their worker died or stalled): runnable again. */
  async expiredLeases(limit: number): Promise<string[]> {
    const { rows } = await this.c.db.query<{ id: string }>(
      this.c.sql(`
        SELECT id FROM {schema}.actors
         WHERE status IN ('running','compensating') AND lease_expires_at < now()
         ORDER BY lease_expires_at LIMIT $1`),
      [limit],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Retention: deletes finished actors (journals, archives, timers cascade) older than `ageMs`.
   * Their messages and outbox rows stay (retention of those is separate) but lose their
   * journal origin: an actor spawned later with the same id starts at generation 0, seq 0
   * again, and its effects must not collide with the old incarnation's.
   */
  async deleteFinished(ageMs: number, batch: number): Promise<number> {
    const { rows } = await this.c.db.query<{ n: number }>(
      this.c.sql(`
        WITH d AS (
          DELETE FROM {schema}.actors WHERE id IN (
            SELECT id FROM {schema}.actors
             WHERE status IN ('completed','failed','cancelled') AND finished_at < now() - ${MS("$1")} LIMIT $2)
          RETURNING id),
        m AS (
          UPDATE {schema}.messages SET origin_actor = NULL, origin_generation = NULL, origin_seq = NULL, origin_index = NULL
           WHERE origin_actor IN (SELECT id FROM d) RETURNING 1),
        o AS (
          UPDATE {schema}.outbox SET origin_generation = NULL, origin_seq = NULL
           WHERE actor_id IN (SELECT id FROM d) RETURNING 1)
        SELECT (SELECT count(*)::int FROM d) AS n, (SELECT count(*) FROM m) + (SELECT count(*) FROM o) AS touched`),
      [ageMs, batch],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** A stopping worker drops its parked executions: deliveries stop keeping their actors for it. */
  async forgetParked(worker: string): Promise<void> {
    await this.c.db.query(
      this.c.sql("UPDATE {schema}.actors SET sticky_worker = NULL WHERE sticky_worker = $1"),
      [worker],
    );
  }
}
