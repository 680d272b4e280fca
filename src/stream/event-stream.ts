/**
 * The global event stream: every journal entry (current and archived generations) and every
 * published message, in one order that readers can follow from a position and resume.
 *
 * Order, and why nothing is ever skipped: each row records the id of the transaction that
 * inserted it (`txid`, migration 0002). A read returns only rows of transactions below a
 * bound taken from the statement's own snapshot (its xmin, see BOUND in
 * storage/stream-store.ts): every such transaction has finished (committed or rolled back)
 * and is fully visible, and none can add rows any more, so no row can ever appear below a
 * position a reader has passed. Rows are read in (txid, journal before messages, row key)
 * order. A bigserial id alone would not do: ids are assigned at insert, not at commit, so
 * "id > last" skips a smaller id that commits later.
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
import { ValidationError, type RecordedError } from "../api/errors.js";
import { channelOfMailbox } from "../storage/mailbox.js";
import type { StreamRow, StreamStore } from "../storage/stream-store.js";
import {
  STREAM_START,
  journalPosition,
  messagePosition,
  parsePosition,
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

function toEvent(r: StreamRow): StreamEvent {
  if (r.kind === "journal") {
    const e: JournalStreamEvent = {
      kind: "journal",
      position: journalPosition(r.txid, r.actorId, r.generation, r.seq),
      at: r.at,
      actorId: r.actorId,
      generation: r.generation,
      seq: r.seq,
      op: r.op,
      name: r.name,
      data: decode(r.data),
    };
    if (r.error) e.error = r.error;
    return e;
  }
  const to = r.directTo;
  const e: MessageStreamEvent = {
    kind: "message",
    position: messagePosition(r.txid, BigInt(r.messageId)),
    at: r.at,
    messageId: r.messageId,
    channel: to === null ? r.source : channelOfMailbox(r.source, to),
    metadata: r.metadata,
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
export async function readStream(stream: StreamStore, options?: ReadStreamOptions): Promise<StreamPage> {
  const opts = optionsArg(options, "readStream options");
  const after = opts.after === undefined ? STREAM_START : opts.after;
  const parsed = parsePosition(after, "readStream after");
  const limit = checkLimit(opts.limit, "readStream limit", DEFAULT_READ_LIMIT);
  const graceMs = checkGrace(opts.foreignTxGrace, "readStream foreignTxGrace");
  const { snapshotXmax: xmax, rows } = await stream.read(parsed, limit, graceMs);
  if (parsed.kind !== "start" && parsed.txid >= xmax) {
    // A position's transaction had finished when it was read, and xmax never goes back: this
    // position comes from another database (or one restored from a dump, whose ids restarted).
    throw new ValidationError(
      `stream position "${after.slice(0, 80)}" is ahead of this database (its transaction ${parsed.txid} has not happened here); was it read from another database?`,
    );
  }
  const events = rows.map(toEvent);
  return { events, position: events.at(-1)?.position ?? after, caughtUp: events.length < limit };
}
