import { Packr } from "msgpackr";
import { PayloadTooLargeError, SerializationError } from "./errors.js";

/**
 * Values are stored as bytes with a one-byte tag:
 *  - JSON (tag 1) for plain JSON values: readable in the database and filterable as jsonb;
 *  - msgpack (tag 2) when the value holds bytes, Date, Map, Set, BigInt, typed arrays or
 *    non-finite numbers, which JSON would silently mangle;
 *  - tag 0 for `undefined` (an actor or step that returns nothing).
 */
const TAG_UNDEFINED = 0;
const TAG_JSON = 1;
const TAG_MSGPACK = 2;
/**
 * A delivered message (tag 3): [u32 header length][header JSON][data, itself encoded].
 * Built by SQL at delivery so fan-out needs no round trip through JS.
 */
const TAG_MESSAGE = 3;

const packr = new Packr({
  useRecords: true,
  moreTypes: true,
  structuredClone: true,
  useBigIntExtension: true,
});

type Kind = "json" | "msgpack";

/** Walks the value once: rejects what cannot be stored and tells which encoding it needs. */
function classify(value: unknown, path: string, seen: Set<object>): Kind {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return "json";
    case "number":
      return Number.isFinite(value) ? "json" : "msgpack";
    case "bigint":
      return "msgpack";
    case "function":
    case "symbol":
      throw new SerializationError(`${path} is a ${typeof value}, which cannot be stored`);
  }
  if (value === null) return "json";
  const obj = value as object;
  if (seen.has(obj)) throw new SerializationError(`${path} is a cyclic reference, which cannot be stored`);
  if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer || obj instanceof Date) return "msgpack";
  seen.add(obj);
  try {
    let kind: Kind = "json";
    if (obj instanceof Map) {
      for (const [k, v] of obj) {
        classify(k, `${path}<key>`, seen);
        classify(v, `${path}.get(${String(k)})`, seen);
      }
      return "msgpack";
    }
    if (obj instanceof Set) {
      for (const v of obj) classify(v, `${path}<member>`, seen);
      return "msgpack";
    }
    if (obj instanceof Promise) throw new SerializationError(`${path} is a Promise; await it before storing`);
    if (obj instanceof WeakMap || obj instanceof WeakSet)
      throw new SerializationError(`${path} cannot be stored`);
    const entries = Array.isArray(obj) ? obj.map((v, i) => [String(i), v] as const) : Object.entries(obj);
    for (const [k, v] of entries) {
      if (classify(v, `${path}.${k}`, seen) === "msgpack") kind = "msgpack";
    }
    return kind;
  } finally {
    seen.delete(obj);
  }
}

export interface EncodeOptions {
  /** Maximum encoded size in bytes; larger values raise PayloadTooLargeError. */
  maxBytes?: number;
  /** Names the value in error messages ("input", "message data" …). */
  what?: string;
}

export function encode(value: unknown, opts: EncodeOptions = {}): Buffer {
  const what = opts.what ?? "value";
  let out: Buffer;
  if (value === undefined) {
    out = Buffer.from([TAG_UNDEFINED]);
  } else if (classify(value, what, new Set()) === "json") {
    out = Buffer.concat([Buffer.from([TAG_JSON]), Buffer.from(JSON.stringify(value), "utf8")]);
  } else {
    let packed: Buffer;
    try {
      packed = packr.pack(value);
    } catch (err) {
      throw new SerializationError(`${what} cannot be encoded: ${(err as Error).message}`, { cause: err });
    }
    out = Buffer.concat([Buffer.from([TAG_MSGPACK]), packed]);
  }
  if (opts.maxBytes !== undefined && out.length > opts.maxBytes)
    throw new PayloadTooLargeError(out.length, opts.maxBytes);
  return out;
}

export function decode<T = unknown>(bytes: Uint8Array | null | undefined): T {
  if (!bytes || bytes.length === 0) return undefined as T;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (buf[0]) {
    case TAG_UNDEFINED:
      return undefined as T;
    case TAG_JSON:
      return JSON.parse(buf.subarray(1).toString("utf8")) as T;
    case TAG_MSGPACK:
      return packr.unpack(buf.subarray(1)) as T;
    case TAG_MESSAGE: {
      const len = buf.readUInt32BE(1);
      const header = JSON.parse(buf.subarray(5, 5 + len).toString("utf8")) as Record<string, unknown>;
      const msg: Record<string, unknown> = {
        id: header.id,
        channel: header.channel,
        data: decode(buf.subarray(5 + len)),
        metadata: header.metadata ?? {},
        publishedAt: new Date(header.publishedAt as number),
      };
      if (header.sender) msg.sender = header.sender;
      if (header.context) msg.context = header.context;
      return msg as T;
    }
    default:
      throw new SerializationError(`stored value has an unknown encoding tag ${buf[0]}`);
  }
}

/** The JSON text of a JSON-encoded value (for jsonb columns used by filters), or null when it is msgpack. */
export function jsonText(encoded: Buffer): string | null {
  return encoded[0] === TAG_JSON ? encoded.subarray(1).toString("utf8") : null;
}

/**
 * SQL expression building a tag-3 message envelope from a messages row `m` and the
 * user-facing channel name expression `ch`.
 */
export function messageEnvelopeSql(m: string, ch: string): string {
  const header = `convert_to(json_build_object('id', ${m}.id::text, 'channel', ${ch}, 'metadata', ${m}.metadata, 'sender', ${m}.sender, 'context', ${m}.context, 'publishedAt', floor(extract(epoch from ${m}.published_at) * 1000))::text, 'UTF8')`;
  return `('\\x03'::bytea || int4send(octet_length(${header})) || ${header} || ${m}.data)`;
}
