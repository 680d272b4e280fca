/**
 * The global event stream: every journal entry (current and archived generations) and every
 * published message, in one order that readers can follow from a position and resume.
 *
 * Order, and why nothing is ever skipped: each row records the id of the transaction that
 * inserted it (`txid`, migration 0002). A read returns only rows of transactions below a
 * bound taken from the statement's own snapshot (its xmin, see BOUND): every such
 * transaction has finished (committed or rolled back) and is fully visible, and none can add
 * rows any more, so no row can ever appear below a position a reader has passed. Rows are
 * read in (txid, journal before messages, row key) order. A bigserial id alone would not do:
 * ids are assigned at insert, not at commit, so "id > last" skips a smaller id that commits
 * later.
 *
 * What the order promises:
 * - one actor's journal entries come in (generation, seq) order: the actor's lease makes each
 *   journal write start after the previous one committed, and a later transaction has a
 *   larger id;
 * - writes that happen one after the other (the second starts after the first committed)
 *   come in that order; so do messages of one channel published one after the other;
 * - messages published concurrently to one channel come in transaction-id order, which may
 *   differ from their message-id order.
 *
 * Latency: a row becomes readable once every older transaction that touches troupe's schema
 * has finished (others, after a grace period), so a long-running troupe transaction (a long
 * `ctx.transaction`, a stuck worker) holds the stream back while it runs. Rows deleted before
 * a reader got to them (message retention, deleted actors) are not seen.
 */
import { optionsArg } from "../arguments.js";
import { decode } from "../codec.js";
import { toMillis, type Duration } from "../duration.js";
import { ValidationError, type RecordedError } from "../errors.js";
import { channelOfMailbox } from "../storage/mailbox.js";
import type { Storage } from "../storage/storage.js";
import {
  STREAM_START,
  journalPosition,
  messagePosition,
  parsePosition,
  type ParsedPosition,
  type StreamPosition,
} from "./position.js";

interface EventBase {
  /** Where this event is; pass it as `after` to read what follows. */
  position: StreamPosition;
  /** When it was written (journal entry) or published (message). */
  at: Date;
  /** The decoded value: a journal entry's result, or a message's data. */
  data: unknown;
}

/** One journaled operation of an actor (step, publish, receive, sleep …). */
export interface JournalStreamEvent extends EventBase {
  kind: "journal";
  actorId: string;
  generation: number;
  seq: number;
  /** The journal entry's kind ("step", "publish", "receive" …). */
  op: string;
  name: string;
  error?: RecordedError;
}

/** One published or sent message. */
export interface MessageStreamEvent extends EventBase {
  kind: "message";
  messageId: string;
  /** The channel as the publisher named it (a direct message's mailbox suffix removed). */
  channel: string;
  /** The target actor of a direct message. */
  to?: string;
  /** The actor that published it, when an actor did. */
  sender?: string;
  metadata: Record<string, unknown>;
}

export type StreamEvent = JournalStreamEvent | MessageStreamEvent;

export interface ReadStreamOptions {
  /** Read what comes after this position (default: the start of the stream). */
  after?: StreamPosition;
  /** At most this many events (1 … 10,000; default 100). */
  limit?: number;
  /**
   * How long a write transaction that touches nothing in troupe's schema may hold the stream
   * back (default "5s"); null: until it ends (the plain snapshot-xmin bound).
   */
  foreignTxGrace?: Duration | null;
}

export interface StreamPage {
  events: StreamEvent[];
  /** The last event's position, or `after` when there was none. */
  position: StreamPosition;
  /** Fewer events than `limit`: this read reached what is currently readable. */
  caughtUp: boolean;
}

export const MAX_READ_LIMIT = 10_000;
export const DEFAULT_READ_LIMIT = 100;
export const DEFAULT_FOREIGN_TX_GRACE: Duration = "5s";

export function checkGrace(value: unknown, what: string): number | null {
  if (value === null) return null;
  return toMillis((value ?? DEFAULT_FOREIGN_TX_GRACE) as Duration, what);
}

export function checkLimit(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number")
    throw new ValidationError(
      `${what} must be an integer from 1 to ${MAX_READ_LIMIT}, got a ${typeof value}`,
    );
  if (!Number.isInteger(value) || value < 1 || value > MAX_READ_LIMIT)
    throw new ValidationError(`${what} must be an integer from 1 to ${MAX_READ_LIMIT}, got ${value}`);
  return value;
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

function readSql(after: ParsedPosition["kind"]): string {
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

function paramsFor(p: ParsedPosition, limit: number, graceMs: number | null): unknown[] {
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

function toEvent(r: Row): StreamEvent {
  const txid = BigInt(r.txid!);
  const at = r.at instanceof Date ? r.at : new Date(r.at);
  if (r.k === "j") {
    const generation = Number(r.generation);
    const seq = Number(r.seq);
    const e: JournalStreamEvent = {
      kind: "journal",
      position: journalPosition(txid, r.actor_id!, generation, seq),
      at,
      actorId: r.actor_id!,
      generation,
      seq,
      op: r.op!,
      name: r.name!,
      data: decode(r.data),
    };
    if (r.error) e.error = r.error;
    return e;
  }
  const source = r.channel!;
  const to = r.direct_to;
  const e: MessageStreamEvent = {
    kind: "message",
    position: messagePosition(txid, BigInt(r.mid!)),
    at,
    messageId: r.mid!,
    channel: to === null ? source : channelOfMailbox(source, to),
    metadata: r.metadata ?? {},
    data: decode(r.data),
  };
  if (to !== null) e.to = to;
  if (r.sender !== null) e.sender = r.sender;
  return e;
}

/**
 * Reads up to `limit` events after `after`, in stream order. Only finished transactions are
 * read, so following `position` from page to page never skips an event.
 */
export async function readStream(storage: Storage, options?: ReadStreamOptions): Promise<StreamPage> {
  const opts = optionsArg(options, "readStream options");
  const after = opts.after === undefined ? STREAM_START : opts.after;
  const parsed = parsePosition(after, "readStream after");
  const limit = checkLimit(opts.limit, "readStream limit", DEFAULT_READ_LIMIT);
  const graceMs = checkGrace(opts.foreignTxGrace, "readStream foreignTxGrace");
  const { rows } = await storage.db.query<Row>(
    storage.sql(SQL[parsed.kind]),
    paramsFor(parsed, limit, graceMs),
  );
  const xmax = BigInt(rows[0]!.snap_xmax);
  if (parsed.kind !== "start" && parsed.txid >= xmax) {
    // A position's transaction had finished when it was read, and xmax never goes back: this
    // position comes from another database (or one restored from a dump, whose ids restarted).
    throw new ValidationError(
      `stream position "${after.slice(0, 80)}" is ahead of this database (its transaction ${parsed.txid} has not happened here); was it read from another database?`,
    );
  }
  const events = rows.filter((r) => r.txid !== null).map(toEvent);
  return { events, position: events.at(-1)?.position ?? after, caughtUp: events.length < limit };
}
