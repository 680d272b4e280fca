import { randomUUID } from "node:crypto";
import type { Message } from "../channels.js";
import { decode, encode } from "../codec.js";
import type { Wakeup } from "../wakeups/wakeups.js";

/*
 * A message on a non-durable channel never touches storage: it travels inside an
 * "ephemeral" wakeup and reaches the in-memory listeners (troupe.listen) of the processes
 * that are up. Built here for every sender (outside actors, ctx.publish, tx.publish) and
 * read here by the listeners.
 */

interface EphemeralWire {
  id: string;
  channel: string;
  metadata: Record<string, unknown>;
  publishedAt: number;
  data: Buffer;
  sender?: string;
}

/** The wakeup carrying one ephemeral message, and the message's id (`e-` + a random UUID). */
export function ephemeralMessage(
  channel: string,
  data: Buffer,
  metadata: Record<string, unknown>,
  sender?: string,
): { id: string; wakeup: Wakeup } {
  const id = `e-${randomUUID()}`;
  const msg: EphemeralWire = {
    id,
    channel,
    metadata,
    publishedAt: Date.now(),
    data,
    ...(sender ? { sender } : {}),
  };
  return { id, wakeup: { kind: "ephemeral", key: channel, payload: encode(msg) } };
}

/** The message an ephemeral wakeup carries, as listeners see it. */
export function readEphemeral(payload: Uint8Array): Message<unknown> {
  const raw = decode<EphemeralWire>(payload);
  return {
    id: raw.id,
    channel: raw.channel,
    data: decode(raw.data),
    metadata: raw.metadata,
    publishedAt: new Date(raw.publishedAt),
    ...(raw.sender ? { sender: raw.sender } : {}),
  };
}
