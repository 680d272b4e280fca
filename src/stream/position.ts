import { ValidationError } from "../api/errors.js";

/**
 * A place in the event stream: the position of the last event read. Opaque, but stable (an
 * event always has the same position) and ordered: positions compare like the events they
 * name with plain string comparison (`a < b`, or `COLLATE "C"` in SQL). "" is the start.
 *
 * Format (lowercase hex, fixed widths where it matters for ordering):
 *   journal entry: <txid:16>.j<actor id as UTF-8 hex>.<generation:8><seq:8>
 *   message:       <txid:16>.m<message id:16>
 * where txid is the inserting transaction's id (xid8). Within one transaction journal entries
 * come before messages; actor ids compare byte-wise (the "." ends a shorter id first).
 */
export type StreamPosition = string;

/** The position before the first event. */
export const STREAM_START: StreamPosition = "";

export type ParsedPosition =
  | { kind: "start"; txid: 0n }
  | { kind: "j"; txid: bigint; actorId: string; generation: number; seq: number }
  | { kind: "m"; txid: bigint; id: bigint };

const MAX_LENGTH = 4096;
const INT32_MAX = 0x7fff_ffff;
const INT64_MAX = 0x7fff_ffff_ffff_ffffn;
const XID8_MAX = 0xffff_ffff_ffff_ffffn;
const PATTERN = /^([0-9a-f]{16})\.(?:j((?:[0-9a-f]{2})*)\.([0-9a-f]{8})([0-9a-f]{8})|m([0-9a-f]{16}))$/;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const hex = (n: bigint | number, width: number) => n.toString(16).padStart(width, "0");

function checkRange(value: bigint | number, max: bigint | number, what: string): void {
  if (value < 0 || value > max)
    throw new Error(`troupe: ${what} ${String(value)} cannot be encoded in a position`);
}

export function journalPosition(
  txid: bigint,
  actorId: string,
  generation: number,
  seq: number,
): StreamPosition {
  checkRange(txid, XID8_MAX, "transaction id");
  checkRange(generation, INT32_MAX, "generation");
  checkRange(seq, INT32_MAX, "journal seq");
  return `${hex(txid, 16)}.j${Buffer.from(actorId, "utf8").toString("hex")}.${hex(generation, 8)}${hex(seq, 8)}`;
}

export function messagePosition(txid: bigint, id: bigint): StreamPosition {
  checkRange(txid, XID8_MAX, "transaction id");
  checkRange(id, INT64_MAX, "message id");
  return `${hex(txid, 16)}.m${hex(id, 16)}`;
}

function invalid(value: string, why: string): ValidationError {
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return new ValidationError(`stream position "${shown}" is not valid: ${why}`);
}

/** Checks and takes apart a position; anything that is not exactly what troupe writes is a ValidationError. */
export function parsePosition(value: unknown, what = "stream position"): ParsedPosition {
  if (typeof value !== "string")
    throw new ValidationError(`${what} must be a string, got ${value === null ? "null" : typeof value}`);
  if (value === STREAM_START) return { kind: "start", txid: 0n };
  if (value.length > MAX_LENGTH) throw invalid(value, `longer than ${MAX_LENGTH} characters`);
  const m = PATTERN.exec(value);
  if (!m) throw invalid(value, "not a position troupe wrote");
  const txid = BigInt(`0x${m[1]!}`);
  if (m[5] !== undefined) {
    const id = BigInt(`0x${m[5]}`);
    if (id > INT64_MAX) throw invalid(value, "message id out of range");
    return { kind: "m", txid, id };
  }
  const generation = Number.parseInt(m[3]!, 16);
  const seq = Number.parseInt(m[4]!, 16);
  if (generation > INT32_MAX || seq > INT32_MAX) throw invalid(value, "generation or seq out of range");
  let actorId: string;
  try {
    actorId = utf8.decode(Buffer.from(m[2]!, "hex"));
  } catch {
    throw invalid(value, "the actor id is not UTF-8");
  }
  if (actorId.includes("\0")) throw invalid(value, "the actor id contains NUL");
  return { kind: "j", txid, actorId, generation, seq };
}

/** Orders two positions (-1, 0, 1); both are validated. Same as comparing the strings. */
export function comparePositions(a: StreamPosition, b: StreamPosition): number {
  parsePosition(a);
  parsePosition(b);
  return a < b ? -1 : a > b ? 1 : 0;
}
