import type { RecordedError } from "../api/errors.js";
import type { SchemaDb } from "./schema-db.js";

/**
 * Reads of the global event stream (journal, archived journal, messages in one order). The
 * order and why a read never skips a row are explained in stream/event-stream.ts; this file
 * holds the SQL.
 */

/** Where a read starts: the start, after a journal entry, or after a message (a parsed position). */
export type StreamAfter =
  | { kind: "start" }
  | { kind: "j"; txid: bigint; actorId: string; generation: number; seq: number }
  | { kind: "m"; txid: bigint; id: bigint };

/** One streamed row as stored; txid is the inserting transaction's id. */
export type StreamRow =
  | {
      kind: "journal";
      txid: bigint;
      actorId: string;
      generation: number;
      seq: number;
      op: string;
      name: string;
      data: Uint8Array | null;
      error: RecordedError | null;
      at: Date;
    }
  | {
      kind: "message";
      txid: bigint;
      messageId: string;
      /** The stored channel: a direct message's mailbox. */
      source: string;
      directTo: string | null;
      sender: string | null;
      metadata: Record<string, unknown>;
      data: Uint8Array | null;
      at: Date;
    };

export interface StreamRead {
  /** The statement snapshot's xmax: no transaction at or above it had started. */
  snapshotXmax: bigint;
  rows: StreamRow[];
}

/*
 * How far a read may go: below `upto`, every transaction that could still add a streamed row
 * has finished and is visible in this statement's snapshot.
 *
 * The safe bound is the snapshot's xmin (plus our own transaction, if it has an id). xmin is
 * cluster-wide, though: any long write transaction, in any schema or database of the server,
 * would hold every stream back. So a transaction that is still running (its transactionid
 * lock is held, read once from pg_locks, after the snapshot), has been running for longer than
 * the grace period, and holds no lock at all on a relation of troupe's schema is looked past:
 * it has written no streamed row (writing one takes a lock held until it ends), and troupe
 * never runs such a transaction (each of its transactions locks a troupe table before it gets
 * a transaction id), so it will not write one either. Anything unsure (a transaction that
 * ended meanwhile, a prepared one, another role's session whose start is hidden) still bounds
 * the read. pg_locks is read only when the snapshot has transactions in progress.
 * grace NULL: use xmin only.
 */
const BOUND = `
  snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
  locks AS MATERIALIZED (
    SELECT locktype, database, relation, transactionid, virtualtransaction, pid, mode, granted FROM pg_locks),
  ours AS MATERIALIZED (
    SELECT DISTINCT virtualtransaction FROM locks
     WHERE locktype = 'relation' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND relation IN (SELECT oid FROM pg_class WHERE relnamespace = '{schema}'::regnamespace)),
  foreign_tx AS (
    SELECT t.transactionid
      FROM locks t JOIN pg_stat_activity a ON a.pid = t.pid AND a.backend_xid = t.transactionid
     WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
       AND a.xact_start < statement_timestamp() - $2::float8 * interval '1 millisecond'
       AND t.virtualtransaction NOT IN (SELECT virtualtransaction FROM ours)),
  bound AS MATERIALIZED (
    SELECT pg_snapshot_xmax(s) AS xmax,
           LEAST(pg_current_xact_id_if_assigned(),
                 CASE WHEN $2::float8 IS NULL OR pg_snapshot_xmin(s) = pg_snapshot_xmax(s) THEN pg_snapshot_xmin(s)
                      ELSE (SELECT coalesce(min(x), pg_snapshot_xmax(s)) FROM pg_snapshot_xip(s) x
                             WHERE x::xid NOT IN (SELECT transactionid FROM foreign_tx)) END) AS upto
      FROM snap)`;

/*
 * One statement, so the bound comes from the same snapshot as the rows. Each branch is read
 * in index order from the position on, bounded by the limit, then merged.
 * $1 = limit, $2 = grace (ms or NULL), $3 = position txid, then the position's key ($4..).
 */
const COLUMNS_JOURNAL = (t: string, generation: string) => `
  ${t}.txid, 'j'::text AS k, ${t}.actor_id, ${generation} AS generation, ${t}.seq, NULL::bigint AS mid,
  ${t}.kind AS op, ${t}.name, ${t}.result AS data, ${t}.error, ${t}.created_at AS at,
  NULL::text AS channel, NULL::jsonb AS metadata, NULL::text AS sender, NULL::text AS direct_to`;

function readSql(after: StreamAfter["kind"]): string {
  const cond = {
    start: { journal: "true", archive: "true", messages: "true" },
    // after a journal entry: the rest of its transaction's entries, then everything later
    j: {
      journal: `(j.txid, j.actor_id COLLATE "C") >= ($3::xid8, $4::text)
                AND (j.txid, j.actor_id COLLATE "C", a.generation, j.seq) > ($3::xid8, $4::text, $5::int, $6::int)`,
      archive: `(r.txid, r.actor_id COLLATE "C", r.generation, r.seq) > ($3::xid8, $4::text, $5::int, $6::int)`,
      messages: "m.txid >= $3::xid8",
    },
    // after a message: the rest of its transaction's messages, then everything later
    m: {
      journal: "j.txid > $3::xid8",
      archive: "r.txid > $3::xid8",
      messages: "(m.txid, m.id) > ($3::xid8, $4::bigint)",
    },
  }[after];
  return `
    WITH ${BOUND}
    SELECT bound.xmax::text AS snap_xmax, e.txid::text AS txid, e.k, e.actor_id, e.generation, e.seq,
           e.mid::text AS mid, e.op, e.name, e.data, e.error, e.at, e.channel, e.metadata, e.sender, e.direct_to
      FROM bound LEFT JOIN (
        (SELECT ${COLUMNS_JOURNAL("j", "a.generation")}
           FROM {schema}.journal j JOIN {schema}.actors a ON a.id = j.actor_id
          WHERE j.txid < (SELECT upto FROM bound) AND ${cond.journal}
          ORDER BY j.txid, j.actor_id COLLATE "C", a.generation, j.seq LIMIT $1)
        UNION ALL
        (SELECT ${COLUMNS_JOURNAL("r", "r.generation")}
           FROM {schema}.journal_archive r
          WHERE r.txid < (SELECT upto FROM bound) AND ${cond.archive}
          ORDER BY r.txid, r.actor_id COLLATE "C", r.generation, r.seq LIMIT $1)
        UNION ALL
        (SELECT m.txid, 'm'::text, NULL::text, NULL::int, NULL::int, m.id, NULL::text, NULL::text, m.data,
                NULL::jsonb, m.published_at, m.channel, m.metadata, m.sender, m.direct_to
           FROM {schema}.messages m
          WHERE m.txid < (SELECT upto FROM bound) AND ${cond.messages}
          ORDER BY m.txid, m.id LIMIT $1)
      ) e ON true
     ORDER BY e.txid, e.k, e.actor_id COLLATE "C", e.generation, e.seq, e.mid
     LIMIT $1`;
}

const SQL = { start: readSql("start"), j: readSql("j"), m: readSql("m") };

function paramsFor(p: StreamAfter, limit: number, graceMs: number | null): unknown[] {
  switch (p.kind) {
    case "start":
      return [limit, graceMs];
    case "j":
      return [limit, graceMs, p.txid.toString(), p.actorId, p.generation, p.seq];
    case "m":
      return [limit, graceMs, p.txid.toString(), p.id.toString()];
  }
}

interface Row {
  snap_xmax: string;
  txid: string | null;
  k: "j" | "m" | null;
  actor_id: string | null;
  generation: number | null;
  seq: number | null;
  mid: string | null;
  op: string | null;
  name: string | null;
  data: Uint8Array | null;
  error: RecordedError | null;
  at: Date | string;
  channel: string | null;
  metadata: Record<string, unknown> | null;
  sender: string | null;
  direct_to: string | null;
}

function toStreamRow(r: Row): StreamRow {
  const txid = BigInt(r.txid!);
  const at = r.at instanceof Date ? r.at : new Date(r.at);
  if (r.k === "j")
    return {
      kind: "journal",
      txid,
      actorId: r.actor_id!,
      generation: Number(r.generation),
      seq: Number(r.seq),
      op: r.op!,
      name: r.name!,
      data: r.data,
      error: r.error,
      at,
    };
  return {
    kind: "message",
    txid,
    messageId: r.mid!,
    source: r.channel!,
    directTo: r.direct_to,
    sender: r.sender,
    metadata: r.metadata ?? {},
    data: r.data,
    at,
  };
}

export class StreamStore {
  constructor(private readonly c: SchemaDb) {}

  /**
   * Up to `limit` rows after `after`, in stream order, from transactions below the bound of
   * this statement's own snapshot; `graceMs` as ReadStreamOptions.foreignTxGrace (null: xmin only).
   */
  async read(after: StreamAfter, limit: number, graceMs: number | null): Promise<StreamRead> {
    const { rows } = await this.c.db.query<Row>(
      this.c.sql(SQL[after.kind]),
      paramsFor(after, limit, graceMs),
    );
    return {
      snapshotXmax: BigInt(rows[0]!.snap_xmax),
      rows: rows.filter((r) => r.txid !== null).map(toStreamRow),
    };
  }
}
