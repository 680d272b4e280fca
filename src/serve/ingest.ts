import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { checkChannelName } from "../channels.js";
import { IngestError } from "../api/errors.js";
import { checkName } from "../names.js";
import {
  CORE_ATTRIBUTES,
  EXTENSION_NAME,
  checkAttribute,
  decodeHeaderValue,
  isJsonMediaType,
} from "../outbox/cloudevent.js";

/**
 * Turns an HTTP request into a CloudEvent (HTTP binding: binary or structured mode) and
 * checks it. Every rejection is an IngestError with a stable code and a reason a sender
 * can act on.
 */

/** A received event: its context attributes (strings, booleans, integers) and its data. */
export interface IngestedEvent {
  attributes: Record<string, string | number | boolean>;
  /** JSON value, string (text/*), bytes (other media types), or undefined without a body. */
  data: unknown;
  /** The actor named by the `troupeactor` extension, if any. */
  targetActor: string | undefined;
  /** Idempotency key derived from source + id (CloudEvents' uniqueness rule). */
  idempotencyKey: string;
}

/** The routing extension: deliver to this actor's mailbox instead of publishing. */
export const TARGET_EXTENSION = "troupeactor";

const REQUIRED = ["specversion", "id", "source", "type"] as const;

function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(";")[0]!.trim().toLowerCase() || undefined;
}

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new IngestError("INVALID_JSON", `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Reads an event from a request; `body` is the whole (size-checked) request body. */
export function readEvent(headers: IncomingHttpHeaders, body: Buffer): IngestedEvent {
  const contentType = headers["content-type"];
  const mt = mediaType(contentType);
  if (mt === "application/cloudevents-batch+json")
    throw new IngestError(
      "BATCH_NOT_SUPPORTED",
      "batched CloudEvents are not accepted: send one event per request",
    );
  if (mt === "application/cloudevents+json") return structured(body);
  if (headers["ce-specversion"] !== undefined) return binary(headers, contentType, body);
  if (mt?.startsWith("application/cloudevents"))
    throw new IngestError("UNSUPPORTED_MEDIA_TYPE", `event format "${mt}" is not supported: use JSON`);
  throw new IngestError(
    "NOT_A_CLOUDEVENT",
    "not a CloudEvent: send binary mode (ce-specversion, ce-id, ce-source, ce-type headers and the data as body) " +
      "or structured mode (content-type: application/cloudevents+json)",
  );
}

function binary(headers: IncomingHttpHeaders, contentType: string | undefined, body: Buffer): IngestedEvent {
  const attrs: Record<string, unknown> = {};
  for (const [header, raw] of Object.entries(headers)) {
    if (!header.startsWith("ce-") || raw === undefined) continue;
    const name = header.slice(3);
    const value = Array.isArray(raw) ? raw.join(",") : raw;
    try {
      attrs[name] = decodeHeaderValue(value, header);
    } catch (err) {
      throw new IngestError("INVALID_ATTRIBUTE", (err as Error).message);
    }
  }
  if (attrs.datacontenttype !== undefined)
    throw new IngestError(
      "INVALID_ATTRIBUTE",
      "in binary mode the data content type is the Content-Type header, not ce-datacontenttype",
    );
  if (contentType !== undefined) attrs.datacontenttype = contentType;
  let data: unknown;
  if (body.length > 0) {
    const mt = mediaType(contentType);
    if (mt === undefined || isJsonMediaType(contentType)) data = parseJson(body, "the body");
    else if (mt.startsWith("text/")) data = body.toString("utf8");
    else data = body;
  }
  return finish(attrs, data);
}

function structured(body: Buffer): IngestedEvent {
  const doc = parseJson(body, "the structured-mode body");
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new IngestError("INVALID_CLOUDEVENT", "a structured-mode body must be a JSON object");
  const attrs: Record<string, unknown> = {};
  let data: unknown;
  const obj = doc as Record<string, unknown>;
  if (obj.data !== undefined && obj.data_base64 !== undefined)
    throw new IngestError("INVALID_CLOUDEVENT", 'an event has either "data" or "data_base64", not both');
  for (const [name, value] of Object.entries(obj)) {
    if (name === "data") data = value;
    else if (name === "data_base64") {
      if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0)
        throw new IngestError("INVALID_CLOUDEVENT", '"data_base64" must be a base64 string');
      data = Buffer.from(value, "base64");
    } else if (value !== null) attrs[name] = value;
  }
  return finish(attrs, data);
}

function finish(attrs: Record<string, unknown>, data: unknown): IngestedEvent {
  for (const name of REQUIRED) {
    if (attrs[name] === undefined || attrs[name] === "")
      throw new IngestError(
        name === "specversion" ? "MISSING_SPECVERSION" : "MISSING_ATTRIBUTE",
        `required CloudEvent attribute "${name}" is missing`,
      );
  }
  if (attrs.specversion !== "1.0")
    throw new IngestError(
      "UNSUPPORTED_SPECVERSION",
      `specversion "${String(attrs.specversion)}" is not supported: only "1.0"`,
    );
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "data")
      throw new IngestError(
        "INVALID_ATTRIBUTE",
        'there is no "data" attribute: in binary mode the data is the body',
      );
    if (!(CORE_ATTRIBUTES as readonly string[]).includes(name) && !EXTENSION_NAME.test(name))
      throw new IngestError(
        "INVALID_ATTRIBUTE",
        `attribute name "${name}" is invalid: CloudEvent attribute names are lowercase letters and digits, at most 20`,
      );
    try {
      out[name] = checkAttribute(name, value);
    } catch (err) {
      throw new IngestError("INVALID_ATTRIBUTE", (err as Error).message);
    }
  }
  const type = out.type as string;
  try {
    checkChannelName(type, "event type (used as the channel name)");
  } catch (err) {
    throw new IngestError("INVALID_TYPE", (err as Error).message);
  }
  let targetActor: string | undefined;
  if (out[TARGET_EXTENSION] !== undefined) {
    try {
      targetActor = checkName(out[TARGET_EXTENSION], `${TARGET_EXTENSION} (target actor id)`, 255);
    } catch (err) {
      throw new IngestError("INVALID_ATTRIBUTE", (err as Error).message);
    }
  }
  const idempotencyKey = `ce:${createHash("sha256")
    .update(`${String(out.source)}\n${String(out.id)}`)
    .digest("hex")}`;
  return { attributes: out, data, targetActor, idempotencyKey };
}
