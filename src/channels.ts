import type { ChannelMode } from "./api/types.js";
import { MessageValidationError, ValidationError } from "./api/errors.js";
import { optionsArg } from "./arguments.js";
import { checkJsonbText, checkName } from "./names.js";
import { mailbox } from "./storage/mailbox.js";

export { mailbox };

// ChannelMode and these errors live in src/api/; re-exported here for storage/channel-store.ts and engine/.
export type { ChannelMode };
export const CHANNEL_MODES: readonly ChannelMode[] = ["broadcast", "competing", "direct"];

/** Anything with a `parse` (zod, valibot, arktype …) validates a typed channel's payloads. */
export interface Schema<T> {
  parse(value: unknown): T;
}

/** A typed channel handle. Plain strings are accepted everywhere a channel is. */
export interface Channel<T = unknown> {
  readonly kind: "troupe.channel";
  readonly name: string;
  readonly schema: Schema<T> | undefined;
  /**
   * false: messages skip storage entirely and reach only in-memory listeners
   * (troupe.listen) in processes that are up — for presence or typing indicators.
   */
  readonly durable: boolean;
  /** Type-only marker; never set. */
  readonly __type?: T;
}

export type ChannelLike<T = unknown> = Channel<T> | string;

export function channel<T = unknown>(
  name: string,
  options?: { schema?: Schema<T>; durable?: boolean },
): Channel<T> {
  checkChannelName(name);
  const opts = optionsArg(options, `channel "${name}" options`);
  if (opts.schema !== undefined && typeof opts.schema?.parse !== "function") {
    throw new ValidationError(`channel "${name}": schema must be an object with a parse(value) method`);
  }
  if (opts.durable !== undefined && typeof opts.durable !== "boolean") {
    throw new ValidationError(`channel "${name}": durable must be true or false`);
  }
  return Object.freeze({
    kind: "troupe.channel" as const,
    name,
    schema: opts.schema,
    durable: opts.durable ?? true,
  });
}

export function isDurable(ch: ChannelLike): boolean {
  channelName(ch);
  return typeof ch === "string" || ch.durable !== false;
}

/**
 * send / group broadcast write into actors' mailboxes, and only durable channels have
 * mailboxes: a `{ durable: false }` channel there is a mistake, not a silent write.
 */
export function requireDurable(ch: ChannelLike, op: "send" | "broadcast"): void {
  if (!isDurable(ch))
    throw new ValidationError(
      `channel "${channelName(ch)}" is not durable: ${op} delivers into actors' mailboxes, ` +
        `which only durable channels have (publish reaches the listeners of a non-durable channel)`,
    );
}

/** A message as an actor receives it. */
export interface Message<T = unknown> {
  /** Opaque id, increasing within a channel. */
  id: string;
  /** The channel it arrived on (the plain name, also for direct messages). */
  channel: string;
  data: T;
  metadata: Record<string, unknown>;
  /** The sending actor, when sent from inside an actor. */
  sender?: string;
  /** Ambient context the publisher had (see the `context` option), if any. */
  context?: Record<string, unknown>;
  publishedAt: Date;
}

// Channel names become part of direct mailbox keys (storage/mailbox.ts); keep room for the id.
const MAX_CHANNEL = 200;

export function checkChannelName(name: unknown, what = "channel name"): string {
  return checkName(name, what, MAX_CHANNEL);
}

/**
 * The name of a channel argument, validated. A handle is checked like channel() checks it:
 * anyone can build an object with `kind: "troupe.channel"`, so a handle is never trusted.
 */
export function channelName(ch: ChannelLike): string {
  if (typeof ch === "string") return checkChannelName(ch);
  if (typeof ch === "object" && ch !== null && (ch as { kind?: unknown }).kind === "troupe.channel") {
    const name = checkChannelName(ch.name);
    if (ch.durable !== undefined && typeof ch.durable !== "boolean")
      throw new ValidationError(`channel "${name}": durable must be true or false`);
    if (ch.schema !== undefined && typeof (ch.schema as { parse?: unknown } | null)?.parse !== "function")
      throw new ValidationError(`channel "${name}": schema must be an object with a parse(value) method`);
    return name;
  }
  throw new ValidationError("expected a channel name or a channel() handle");
}

export function channelSchema<T>(ch: ChannelLike<T>): Schema<T> | undefined {
  if (typeof ch === "string") return undefined;
  channelName(ch);
  return ch.schema;
}

/** Runs a typed channel's schema; a failure is an INVALID_MESSAGE error. */
export function validatePayload<T>(ch: ChannelLike<T>, data: unknown): T {
  const schema = channelSchema(ch);
  if (!schema) return data as T;
  try {
    return schema.parse(data);
  } catch (err) {
    throw new MessageValidationError(channelName(ch), err);
  }
}

export function checkMode(mode: unknown): ChannelMode {
  if (!CHANNEL_MODES.includes(mode as ChannelMode)) {
    throw new ValidationError(`channel mode must be one of ${CHANNEL_MODES.join(", ")}, got ${String(mode)}`);
  }
  return mode as ChannelMode;
}

export function checkMetadata(m: unknown): Record<string, unknown> {
  if (m === undefined) return {};
  if (typeof m !== "object" || m === null || Array.isArray(m))
    throw new ValidationError("metadata must be a plain object");
  let copy: Record<string, unknown>;
  try {
    copy = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
  } catch (err) {
    // Cyclic, BigInt, too deep (RangeError) …: all the caller's value.
    throw new ValidationError(
      `metadata must be JSON-serialisable: ${(err as Error)?.message ?? String(err)}`,
    );
  }
  checkJsonbText(copy, "metadata");
  return copy;
}

/** Where the messages of a subscription live: the channel, or the actor's mailbox for direct. */
export function sourceOf(channelName: string, mode: ChannelMode, actorId: string): string {
  return mode === "direct" ? mailbox(channelName, actorId) : channelName;
}
