import { Packr } from "msgpackr";
import { PayloadTooLargeError, SerializationError, TroupeError } from "./api/errors.js";
import { MAX_DEPTH, unstorableText } from "./names.js";

/**
 * Values are stored as bytes with a one-byte tag:
 *  - JSON (tag 1) for plain JSON values: readable in the database and filterable as jsonb;
 *  - msgpack (tag 2) when the value holds bytes, Date, Map, Set, BigInt, typed arrays or
 *    non-finite numbers, which JSON would silently mangle;
 *  - tag 0 for `undefined` (an actor or step that returns nothing).
 */
const TAG_UNDEFINED = 0;
export const TAG_JSON = 1;
const TAG_MSGPACK = 2;
/**
 * A delivered message (tag 3): [u32 header length][header JSON][data, itself encoded].
 * Built by SQL at delivery so fan-out needs no round trip through JS (storage/sql/envelope.ts).
 */
export const TAG_MESSAGE = 3;

const packr = new Packr({
  useRecords: true,
  moreTypes: true,
  structuredClone: true,
  useBigIntExtension: true,
});

type Kind = "json" | "msgpack";

/** Most elements in one array (or entries in a Map/Set) when no byte limit applies. */
const MAX_ELEMENTS = 16 * 1024 * 1024;

interface Walk {
  seen: Set<object>;
  /** Each element costs at least a byte: a longer array is too large before it is walked. */
  maxBytes: number | undefined;
}

/** A short, never-throwing description of a Map key for error paths. */
function describeKey(k: unknown): string {
  if (typeof k === "string") return JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}…` : k);
  if (typeof k === "number" || typeof k === "boolean" || typeof k === "bigint") return String(k);
  return k === null ? "null" : typeof k;
}

function checkCount(n: number, path: string, w: Walk): void {
  if (w.maxBytes !== undefined && n > w.maxBytes) throw new PayloadTooLargeError(n, w.maxBytes);
  if (n > MAX_ELEMENTS)
    throw new SerializationError(`${path} has ${n} elements; the limit is ${MAX_ELEMENTS}`);
}

/** Walks the value once: rejects what cannot be stored and tells which encoding it needs. */
function classify(value: unknown, path: string, w: Walk, depth = 0): Kind {
  switch (typeof value) {
    case "string": {
      const problem = unstorableText(value);
      if (problem === undefined) return "json";
      // A lone surrogate has no UTF-8 form: every encoding would silently replace it.
      if (problem !== "a NUL character")
        throw new SerializationError(`${path} contains ${problem}, which cannot be stored`);
      return "msgpack"; // jsonb cannot hold NUL; bytes can
    }
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
  if (depth >= MAX_DEPTH)
    throw new SerializationError(
      `${path} is nested more than ${MAX_DEPTH} levels deep, which cannot be stored`,
    );
  if (w.seen.has(obj)) throw new SerializationError(`${path} is a cyclic reference, which cannot be stored`);
  if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer || obj instanceof Date) return "msgpack";
  w.seen.add(obj);
  try {
    let kind: Kind = "json";
    if (obj instanceof Map) {
      checkCount(obj.size, path, w);
      for (const [k, v] of obj) {
        classify(k, `${path}<key>`, w, depth + 1);
        classify(v, `${path}.get(${describeKey(k)})`, w, depth + 1);
      }
      return "msgpack";
    }
    if (obj instanceof Set) {
      checkCount(obj.size, path, w);
      for (const v of obj) classify(v, `${path}<member>`, w, depth + 1);
      return "msgpack";
    }
    if (obj instanceof Promise) throw new SerializationError(`${path} is a Promise; await it before storing`);
    if (obj instanceof WeakMap || obj instanceof WeakSet)
      throw new SerializationError(`${path} cannot be stored`);
    if (Array.isArray(obj)) {
      checkCount(obj.length, path, w);
      // Holes are read as undefined (JSON writes null), never skipped over unseen.
      for (let i = 0; i < obj.length; i++)
        if (classify(obj[i], `${path}[${i}]`, w, depth + 1) === "msgpack") kind = "msgpack";
      return kind;
    }
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      // JSON stores what toJSON returns: check that (a BigInt, a function, undefined …).
      // msgpack would store the object itself, so a value with toJSON stays JSON.
      const replaced: unknown = toJSON.call(obj, "");
      if (replaced === undefined)
        throw new SerializationError(`${path}.toJSON() returned undefined, which cannot be stored`);
      if (classify(replaced, `${path}.toJSON()`, w, depth + 1) === "msgpack")
        throw new SerializationError(`${path}.toJSON() returned a value that JSON cannot hold`);
      return "json";
    }
    const entries = Object.entries(obj);
    checkCount(entries.length, path, w);
    for (const [k, v] of entries) {
      const keyKind = classify(k, `${path}<key ${describeKey(k)}>`, w, depth + 1);
      if (classify(v, `${path}.${k}`, w, depth + 1) === "msgpack" || keyKind === "msgpack") kind = "msgpack";
    }
    return kind;
  } finally {
    w.seen.delete(obj);
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
  try {
    if (value === undefined) {
      out = Buffer.from([TAG_UNDEFINED]);
    } else if (classify(value, what, { seen: new Set(), maxBytes: opts.maxBytes }) === "json") {
      const text = JSON.stringify(value) as string | undefined;
      if (text === undefined) throw new SerializationError(`${what} has no JSON form`);
      out = Buffer.concat([Buffer.from([TAG_JSON]), Buffer.from(text, "utf8")]);
    } else {
      out = Buffer.concat([Buffer.from([TAG_MSGPACK]), packr.pack(value)]);
    }
  } catch (err) {
    if (err instanceof TroupeError) throw err;
    // Getters that throw, proxies, exotic objects: whatever the walk or an encoder trips
    // on is this value's fault, and a typed error, never a raw TypeError or RangeError.
    throw new SerializationError(`${what} cannot be encoded: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
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
