import { optionsArg } from "../arguments.js";
import { nanoid } from "nanoid";
import { PayloadTooLargeError, ValidationError } from "../api/errors.js";
import { MAX_DEPTH, unstorableText } from "../names.js";

/**
 * CloudEvents 1.0 (https://github.com/cloudevents/spec) as troupe emits and accepts them:
 * attribute rules, the JSON event format, and the HTTP binding's header encoding.
 */

/** What `ctx.emit` / `OutboxStore.emit` accept. Unknown keys are extension attributes. */
export interface CloudEventInput {
  type: string;
  /** URI-reference; default `troupe://<actor name>/<actor id>` inside an actor, `troupe://troupe` outside. */
  source?: string;
  subject?: string;
  /** Default: a random id. An id already in the outbox is not emitted again (idempotent by id). */
  id?: string;
  /** Any JSON value, or bytes (Uint8Array/Buffer), which travel as `data_base64`. */
  data?: unknown;
  /** Default: application/json for JSON data, application/octet-stream for bytes. */
  datacontenttype?: string;
  dataschema?: string;
  /** Default: when the event is emitted. */
  time?: Date | string;
  /** Only "1.0" (the default). */
  specversion?: string;
  /** Extension attributes: lowercase a–z/0–9 names of at most 20 characters; string, boolean, integer or Date values. */
  [extension: string]: unknown;
}

/** A CloudEvent in the JSON event format, as handed to an outbox sink. */
export interface CloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  /** JSON data (absent when the event carries bytes or no data). */
  data?: unknown;
  /** Binary data, base64 (absent for JSON data). */
  data_base64?: string;
  [extension: string]: unknown;
}

/** An event validated for the outbox: `attributes` (with JSON `data`) go to the jsonb column, `bytes` to the bytea one. */
export interface PreparedEvent {
  readonly [PREPARED]: true;
  readonly id: string;
  readonly type: string;
  /** Context attributes plus `data` when it is JSON; `source` is absent when the store is to default it. */
  readonly attributes: Record<string, unknown>;
  readonly bytes: Buffer | null;
}

const PREPARED: unique symbol = Symbol("troupe.preparedEvent");

export const CORE_ATTRIBUTES = [
  "specversion",
  "id",
  "source",
  "type",
  "subject",
  "time",
  "datacontenttype",
  "dataschema",
] as const;
const RESERVED = new Set<string>([...CORE_ATTRIBUTES, "data", "data_base64"]);

/** Extension attribute names: lowercase letters and digits, at most 20 (CloudEvents 1.0 §naming). */
export const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;
/** String attribute values must not hold C0/C1 control characters (CloudEvents 1.0 §type-system). */
export const CONTROL_CHARS = /\p{Cc}/u;
/** RFC 3339 date-time, as the `time` attribute requires. */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
/** A media type, optionally with parameters. */
const MEDIA_TYPE = /^[\w.!#$&^+-]+\/[\w.!#$&^+-]+(\s*;.*)?$/;

export const MAX_TYPE_LENGTH = 200;
const MAX_ID_LENGTH = 255;
const MAX_ATTRIBUTE_LENGTH = 2048;

/** `application/json`, `text/json` and any `…+json` media type carry JSON data. */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const mt = contentType.split(";")[0]!.trim().toLowerCase();
  return mt === "application/json" || mt === "text/json" || mt.endsWith("+json");
}

function checkString(value: unknown, what: string, max: number): string {
  if (typeof value !== "string")
    throw new ValidationError(`${what} must be a string, got ${value === null ? "null" : typeof value}`);
  if (value.length === 0) throw new ValidationError(`${what} must not be empty`);
  if (value.length > max)
    throw new ValidationError(`${what} is ${value.length} characters long; the limit is ${max}`);
  if (CONTROL_CHARS.test(value)) throw new ValidationError(`${what} contains control characters`);
  const problem = unstorableText(value);
  if (problem) throw new ValidationError(`${what} contains ${problem}`);
  return value;
}

/** Checks the value of one context attribute (core or extension) and returns it as stored. */
export function checkAttribute(name: string, value: unknown): string | number | boolean {
  const what = `CloudEvent attribute "${name}"`;
  switch (name) {
    case "specversion":
      if (value !== "1.0")
        throw new ValidationError(
          `${what} must be "1.0" (the only version troupe speaks), got ${String(value)}`,
        );
      return value;
    case "type":
      return checkString(value, what, MAX_TYPE_LENGTH);
    case "id":
      return checkString(value, what, MAX_ID_LENGTH);
    case "time": {
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new ValidationError(`${what} is an invalid Date`);
        return value.toISOString();
      }
      const s = checkString(value, what, 64);
      if (!RFC3339.test(s) || Number.isNaN(Date.parse(s)))
        throw new ValidationError(
          `${what} must be an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z), got "${s}"`,
        );
      return s;
    }
    case "datacontenttype": {
      const s = checkString(value, what, 255);
      if (!MEDIA_TYPE.test(s)) throw new ValidationError(`${what} must be a media type, got "${s}"`);
      return s;
    }
    case "source":
    case "subject":
    case "dataschema":
      return checkString(value, what, MAX_ATTRIBUTE_LENGTH);
  }
  if (!EXTENSION_NAME.test(name))
    throw new ValidationError(
      `CloudEvent extension attribute name "${name}" is invalid: use lowercase letters a-z and digits 0-9, at most 20 characters`,
    );
  if (typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new ValidationError(`${what} must be an integer when it is a number, got ${value}`);
    return value;
  }
  if (value instanceof Date) return checkAttribute("time", value);
  if (typeof value === "string") return checkString(value, what, MAX_ATTRIBUTE_LENGTH);
  throw new ValidationError(
    `${what} must be a string, boolean, integer or Date, got ${value === null ? "null" : typeof value}`,
  );
}

/** Data must be JSON (checked deeply, with the path of the first offending value) or bytes. */
function checkJson(value: unknown, path: string, seen: Set<object>, depth = 0): void {
  switch (typeof value) {
    case "string": {
      const problem = unstorableText(value);
      if (problem)
        throw new ValidationError(
          `${path} contains ${problem}, which the outbox cannot store; send bytes instead`,
        );
      return;
    }
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new ValidationError(`${path} is ${value}, which is not JSON`);
      return;
    case "undefined":
      return;
    case "object":
      break;
    default:
      throw new ValidationError(`${path} is a ${typeof value}; CloudEvent data must be JSON or bytes`);
  }
  if (value === null) return;
  const obj = value;
  const proto: unknown = Object.getPrototypeOf(obj);
  if (!Array.isArray(obj) && proto !== Object.prototype && proto !== null)
    throw new ValidationError(
      `${path} is a ${obj.constructor?.name ?? "non-plain object"}; CloudEvent data must be JSON (plain objects, arrays, strings, finite numbers, booleans, null) or bytes`,
    );
  if (seen.has(obj)) throw new ValidationError(`${path} is a cyclic reference`);
  if (depth >= MAX_DEPTH) throw new ValidationError(`${path} is nested more than ${MAX_DEPTH} levels deep`);
  seen.add(obj);
  if (Array.isArray(obj)) {
    // A for loop, not forEach: holes are undefined (JSON null), and a huge sparse array is
    // refused by its length before it is walked.
    if (obj.length > 16 * 1024 * 1024) throw new ValidationError(`${path} has ${obj.length} elements`);
    for (let i = 0; i < obj.length; i++) checkJson(obj[i], `${path}[${i}]`, seen, depth + 1);
  } else
    for (const [k, v] of Object.entries(obj)) {
      const problem = unstorableText(k);
      if (problem) throw new ValidationError(`${path} has a key with ${problem}`);
      checkJson(v, `${path}.${k}`, seen, depth + 1);
    }
  seen.delete(obj);
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/**
 * Validates an event for the outbox and fills in defaults (specversion, id, time,
 * datacontenttype). `source` is filled only when `defaultSource` is given (the actor path
 * lets the database fill it in from the actor row). Bad input throws ValidationError.
 */
export function prepareEvent(
  input: CloudEventInput | PreparedEvent,
  opts: { maxBytes?: number; defaultSource?: string } = {},
): PreparedEvent {
  if (isPrepared(input)) return input;
  if (input === undefined || typeof input !== "object" || input === null || Array.isArray(input))
    throw new ValidationError("emit() expects an event object like { type, data }");
  input = optionsArg(input, "the event");
  if (input.type === undefined) throw new ValidationError('CloudEvent attribute "type" is required');
  const attributes: Record<string, unknown> = { specversion: "1.0" };
  let bytes: Buffer | null = null;
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (name === "data") continue;
    if (name === "data_base64")
      throw new ValidationError(
        'pass binary data as bytes in "data" (a Uint8Array or Buffer), not "data_base64"',
      );
    attributes[name] = checkAttribute(name, value);
  }
  attributes.id ??= nanoid();
  attributes.time ??= new Date().toISOString();
  if (attributes.source === undefined && opts.defaultSource !== undefined)
    attributes.source = checkAttribute("source", opts.defaultSource);
  const data = input.data;
  if (isBytes(data)) {
    bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    attributes.datacontenttype ??= "application/octet-stream";
  } else if (data !== undefined) {
    checkJson(data, "CloudEvent data", new Set());
    attributes.datacontenttype ??= "application/json";
    attributes.data = data;
  }
  if (opts.maxBytes !== undefined) {
    const size = Buffer.byteLength(JSON.stringify(attributes)) + (bytes?.length ?? 0);
    if (size > opts.maxBytes) throw new PayloadTooLargeError(size, opts.maxBytes);
  }
  return Object.freeze({
    [PREPARED]: true as const,
    id: attributes.id as string,
    type: attributes.type as string,
    attributes,
    bytes,
  });
}

function isPrepared(v: unknown): v is PreparedEvent {
  try {
    return typeof v === "object" && v !== null && (v as { [PREPARED]?: unknown })[PREPARED] === true;
  } catch {
    return false; // a Proxy whose get trap throws: not ours, and prepareEvent reports it
  }
}

/** The JSON event format of a stored event: attributes, plus `data_base64` for bytes. */
export function toCloudEvent(attributes: Record<string, unknown>, bytes: Buffer | null): CloudEvent {
  const event = { ...attributes } as CloudEvent;
  if (bytes) {
    delete event.data;
    event.data_base64 = bytes.toString("base64");
  }
  return event;
}

/** The body of a binary-mode HTTP message (and its content type), or null when the event has no data. */
export function binaryBody(event: CloudEvent): { body: Buffer; contentType: string } | null {
  if (event.data_base64 !== undefined) {
    return {
      body: Buffer.from(event.data_base64, "base64"),
      contentType: event.datacontenttype ?? "application/octet-stream",
    };
  }
  if (event.data === undefined) return null;
  const contentType = event.datacontenttype ?? "application/json";
  const text =
    typeof event.data === "string" && !isJsonMediaType(contentType) ? event.data : JSON.stringify(event.data);
  return { body: Buffer.from(text, "utf8"), contentType };
}

/**
 * HTTP binding §3.1.3.2: in `ce-*` header values, space, `"`, `%` and everything outside
 * printable ASCII is percent-encoded (UTF-8).
 */
export function encodeHeaderValue(value: string): string {
  let out = "";
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c > 0x20 && c < 0x7f && ch !== '"' && ch !== "%") out += ch;
    else for (const b of Buffer.from(ch, "utf8")) out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Inverse of encodeHeaderValue; a malformed escape is a ValidationError. */
export function decodeHeaderValue(value: string, header: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ValidationError(`header ${header} has a malformed percent-encoding`);
  }
}

/** Binary-mode headers for an event: `ce-<attribute>` for every attribute except data and datacontenttype. */
export function binaryHeaders(event: CloudEvent): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event)) {
    if (value === undefined || name === "data" || name === "data_base64" || name === "datacontenttype")
      continue;
    headers[`ce-${name}`] = encodeHeaderValue(typeof value === "string" ? value : JSON.stringify(value));
  }
  return headers;
}

export { RESERVED as RESERVED_ATTRIBUTES };
