import type { SendOptions } from "../api/types.js";
import { optionsArg } from "../arguments.js";
import {
  channelName,
  checkMetadata,
  isDurable,
  requireDurable,
  validatePayload,
  type ChannelLike,
  type ChannelMode,
} from "../channels.js";
import { encode } from "../codec.js";
import { ValidationError } from "../api/errors.js";
import { checkName } from "../names.js";
import { mailbox, mailboxPrefix, sendLabel } from "../storage/mailbox.js";
import type { MessageWrite, WriteAt } from "../storage/message-store.js";
import type { SqlClient } from "../storage/database.js";
import type { Storage } from "../storage/storage.js";
import { ephemeralMessage } from "./ephemeral.js";
import type { WakeAfterCommit } from "./wake.js";

/*
 * THE outgoing-message path. Every message — troupe.publish/send/broadcast outside actors,
 * ctx.publish/send/broadcast inside them, tx.publish/send/broadcast in a transactional
 * step — is prepared here (argument rules, schema, size, metadata, mailbox naming, durable
 * or ephemeral), checked against the channel's mode here, and written by one storage insert
 * (storage/sql/insert-messages.ts); its wakeups go out after the commit (wake.ts).
 */

/** Who sends: decides the wording of argument errors and whether an idempotency key is read. */
export type Sender = "client" | "actor" | "step";

/** A send as its caller asked for it (arguments not checked yet). */
export type OutgoingRequest<T> =
  | { op: "publish"; ch: ChannelLike<T>; data: T; options: unknown }
  | { op: "send"; to: string; ch: ChannelLike<T>; data: T; options: unknown }
  | { op: "broadcast"; group: string; ch: ChannelLike<T>; data: T; options: unknown };

interface Prepared {
  /** The channel's name. */
  name: string;
  payload: Buffer;
  metadata: Record<string, unknown>;
  /** Outside actors only. */
  idempotencyKey: string | undefined;
  /** The journal name of the operation (what replay compares). */
  label: string;
}

/** A message ready to write (or, non-durable, to send as a wakeup). */
export type Outgoing =
  | (Prepared & { op: "publish"; durable: boolean })
  | (Prepared & { op: "send"; durable: true; to: string; source: string })
  | (Prepared & { op: "broadcast"; durable: true; group: string });

/**
 * Checks and encodes a send. Argument errors are ValidationErrors thrown before anything
 * happens (inside an actor they consume no journal position); a payload that fails the
 * channel's schema is INVALID_MESSAGE; one over `maxPayloadBytes` is PAYLOAD_TOO_LARGE.
 */
export function prepareOutgoing<R extends OutgoingRequest<any>>(
  req: R,
  from: Sender,
  maxPayloadBytes: number,
): Extract<Outgoing, { op: R["op"] }>;
export function prepareOutgoing(
  req: OutgoingRequest<unknown>,
  from: Sender,
  maxPayloadBytes: number,
): Outgoing {
  const o = optionsArg(
    req.options as SendOptions | undefined,
    from === "client" ? "message options" : from === "step" ? `tx.${req.op} options` : `${req.op} options`,
  );
  if (req.op === "send") checkName(req.to, from === "client" ? "actor id" : "target actor id", 255);
  if (req.op === "broadcast") checkName(req.group, "group name");
  // send / group broadcast write into actors' mailboxes, which only durable channels have.
  if (req.op !== "publish") requireDurable(req.ch, req.op);
  const name = channelName(req.ch);
  const payload = encode(validatePayload(req.ch, req.data), {
    maxBytes: maxPayloadBytes,
    what: `message for "${name}"`,
  });
  const metadata = checkMetadata(o.metadata);
  const idempotencyKey =
    from !== "client" || o.idempotencyKey === undefined
      ? undefined
      : checkName(o.idempotencyKey, "idempotencyKey", 255);
  const base = { name, payload, metadata, idempotencyKey };
  switch (req.op) {
    case "publish":
      return { ...base, op: "publish", durable: isDurable(req.ch), label: name };
    case "send":
      return {
        ...base,
        op: "send",
        durable: true,
        to: req.to,
        source: mailbox(name, req.to),
        // the journal name, unchanged since before mailbox keys were escaped
        label: sendLabel(name, req.to),
      };
    case "broadcast":
      return { ...base, op: "broadcast", durable: true, group: req.group, label: `${req.group}/${name}` };
  }
}

/**
 * The mode rule, one text per conflict: publish goes to broadcast and competing channels,
 * send and group broadcast to direct ones. A channel without a mode yet (nobody subscribed)
 * takes any message.
 */
export function checkModeRule(out: Outgoing, mode: ChannelMode | null): void {
  if (out.op === "publish") {
    if (mode === "direct")
      throw new ValidationError(
        `channel "${out.name}" is a direct channel: use send(actorId, channel, data)`,
      );
  } else if (mode && mode !== "direct") {
    throw new ValidationError(
      out.op === "send"
        ? `channel "${out.name}" is a ${mode} channel: use publish`
        : `channel "${out.name}" is a ${mode} channel: group broadcast sends direct messages`,
    );
  }
}

/** A non-durable publish: no storage; the message travels in a wakeup, sent after the commit. */
export function sendEphemeral(out: Outgoing, wake: WakeAfterCommit, sender?: string): { id: string } {
  const { id, wakeup } = ephemeralMessage(out.name, out.payload, out.metadata, sender);
  wake.add(wakeup);
  return { id };
}

export interface WriteOptions {
  /** The ambient context the sender captured. */
  context?: Record<string, unknown> | null | undefined;
  /** A transactional step's transaction (the write and the mode read happen on it). */
  client?: SqlClient;
}

/**
 * Writes a durable message: checks the mode rule (on `client` when given: a step reads
 * on its own transaction), stores it (one statement; a keyed broadcast from outside is a
 * short transaction of its own) and collects the wakeups for after the commit.
 * Group broadcasts keep no context (they never did).
 */
export async function writeOutgoing<O extends Outgoing>(
  storage: Storage,
  out: O,
  at: WriteAt,
  wake: WakeAfterCommit,
  opts?: WriteOptions,
): Promise<O extends { op: "broadcast" } ? { count: number } : { id: string }>;
export async function writeOutgoing(
  storage: Storage,
  out: Outgoing,
  at: WriteAt,
  wake: WakeAfterCommit,
  opts: WriteOptions = {},
): Promise<{ id: string } | { count: number }> {
  checkModeRule(out, await storage.channels.modeOf(out.name, opts.client));
  const common = { data: out.payload, metadata: out.metadata };
  if (out.op === "broadcast") {
    const w: MessageWrite & { to: { group: string; mailboxPrefix: string } } = {
      ...common,
      to: { group: out.group, mailboxPrefix: mailboxPrefix(out.name) },
    };
    if (at.by === "client" && out.idempotencyKey !== undefined) {
      const { count, sources } = await storage.messages.broadcastOnce(w, out.name, out.idempotencyKey);
      wake.sources(sources);
      return { count };
    }
    const { sources } = await storage.messages.insert(w, at, opts.client);
    wake.sources(sources);
    return { count: sources.length };
  }
  const { ids, sources } = await storage.messages.insert(
    {
      ...common,
      to: out.op === "send" ? { source: out.source, directTo: out.to } : { source: out.name, directTo: null },
      idempotencyKey: out.idempotencyKey,
      context: opts.context,
    },
    at,
    opts.client,
  );
  wake.sources(sources);
  return { id: ids[0]! };
}
