import { randomUUID } from "node:crypto";
import { optionsArg } from "../../arguments.js";
import {
  channelName,
  checkMetadata,
  checkMode,
  isDurable,
  mailbox,
  requireDurable,
  sourceOf,
  validatePayload,
  type ChannelLike,
} from "../../channels.js";
import { decode, encode, jsonText } from "../../codec.js";
import { ValidationError } from "../../errors.js";
import { checkName } from "../../names.js";
import { prepareEvent, type CloudEventInput } from "../../outbox/cloudevent.js";
import { sendLabel } from "../../storage/mailbox.js";
import type { PublishOptions } from "../context.js";
import type { Execution } from "./execution.js";
import { forever } from "./failures.js";

// The ctx operations with effects outside the actor: subscriptions, messages, group
// membership, outbox events, continue-as-new. Each is journaled with its effect, so a
// replay returns the recorded outcome instead of acting again. Written as methods of the
// Execution (`this` bound by ctx.ts).

export async function subscribe(this: Execution, ch: ChannelLike, mode: unknown): Promise<void> {
  const name = channelName(ch);
  if (!isDurable(ch)) {
    throw new ValidationError(
      `channel "${name}" is not durable: actors cannot subscribe to it (use troupe.listen)`,
    );
  }
  const m = checkMode(mode);
  const seq = this.seq++;
  const e = await this.recorded(seq, "subscribe", name);
  if (e) return void this.replayed(e);
  await this.effect(seq, "subscribe", name, (locals) =>
    this.host.storage.channels.subscribe(
      this.fence,
      [...locals, { seq, kind: "subscribe", name, result: encode(m), error: null }],
      this.host.leaseMs,
      { channel: name, mode: m, source: sourceOf(name, m, this.id) },
    ),
  );
}

export async function unsubscribe(this: Execution, ch: ChannelLike): Promise<void> {
  const name = channelName(ch);
  const seq = this.seq++;
  const e = await this.recorded(seq, "unsubscribe", name);
  if (e) return void this.replayed(e);
  await this.effect(seq, "unsubscribe", name, (locals) =>
    this.host.storage.channels.unsubscribe(
      this.fence,
      [...locals, { seq, kind: "unsubscribe", name, result: null, error: null }],
      this.host.leaseMs,
      name,
    ),
  );
}

export async function publish<T>(
  this: Execution,
  ch: ChannelLike<T>,
  data: T,
  options?: PublishOptions,
): Promise<{ id: string }> {
  const o = optionsArg(options, "publish options");
  const name = channelName(ch);
  const payload = this.encodeValue(validatePayload(ch, data), `message for "${name}"`);
  const metadata = checkMetadata(o.metadata);
  const seq = this.seq++;
  if (!isDurable(ch)) return publishEphemeral.call(this, seq, name, payload, metadata);
  const e = await this.recorded(seq, "publish", name);
  if (e) return this.replayed(e);
  return this.effect(seq, "publish", name, async (locals) => {
    if ((await this.host.storage.channels.modeOf(name)) === "direct") {
      throw new ValidationError(`channel "${name}" is a direct channel: use send(actorId, channel, data)`);
    }
    const id = await this.host.storage.channels.publishFromActor(
      this.fence,
      locals,
      { seq, kind: "publish", name, leaseMs: this.host.leaseMs },
      { source: name, data: payload, metadata, context: this.host.propagation.capture() },
    );
    this.host.wake([{ kind: "channel", key: name }]);
    await this.host.debugPoint("publish:after", { actorId: this.id, seq, channel: name });
    return { id };
  });
}

export async function send<T>(
  this: Execution,
  to: string,
  ch: ChannelLike<T>,
  data: T,
  options?: PublishOptions,
): Promise<{ id: string }> {
  const o = optionsArg(options, "send options");
  checkName(to, "target actor id", 255);
  requireDurable(ch, "send");
  const name = channelName(ch);
  const payload = this.encodeValue(validatePayload(ch, data), `message for "${name}"`);
  const metadata = checkMetadata(o.metadata);
  const source = mailbox(name, to);
  const label = sendLabel(name, to); // the journal name, unchanged since before mailbox keys were escaped
  const seq = this.seq++;
  const e = await this.recorded(seq, "send", label);
  if (e) return this.replayed(e);
  return this.effect(seq, "send", label, async (locals) => {
    const mode = await this.host.storage.channels.modeOf(name);
    if (mode && mode !== "direct")
      throw new ValidationError(`channel "${name}" is a ${mode} channel: use publish`);
    const id = await this.host.storage.channels.publishFromActor(
      this.fence,
      locals,
      { seq, kind: "send", name: label, leaseMs: this.host.leaseMs },
      { source, data: payload, metadata, directTo: to, context: this.host.propagation.capture() },
    );
    this.host.wake([{ kind: "channel", key: source }]);
    await this.host.debugPoint("send:after", { actorId: this.id, seq, channel: source });
    return { id };
  });
}

export async function broadcast<T>(
  this: Execution,
  group: string,
  ch: ChannelLike<T>,
  data: T,
  options?: PublishOptions,
): Promise<{ count: number }> {
  const o = optionsArg(options, "broadcast options");
  checkName(group, "group name");
  requireDurable(ch, "broadcast");
  const name = channelName(ch);
  const payload = this.encodeValue(validatePayload(ch, data), `message for "${name}"`);
  const metadata = checkMetadata(o.metadata);
  const opName = `${group}/${name}`;
  const seq = this.seq++;
  const e = await this.recorded(seq, "broadcast", opName);
  if (e) return this.replayed(e);
  return this.effect(seq, "broadcast", opName, async (locals) => {
    const mode = await this.host.storage.channels.modeOf(name);
    if (mode && mode !== "direct")
      throw new ValidationError(
        `channel "${name}" is a ${mode} channel: group broadcast sends direct messages`,
      );
    const { count, sources } = await this.host.storage.channels.broadcastFromActor(
      this.fence,
      locals,
      { seq, name: opName, leaseMs: this.host.leaseMs },
      group,
      name,
      payload,
      metadata,
    );
    this.host.wake(sources.map((key) => ({ kind: "channel" as const, key })));
    return { count };
  });
}

/** Non-durable channels: sent through the wakeup transport only; recorded so a replay does not send again. */
async function publishEphemeral(
  this: Execution,
  seq: number,
  name: string,
  data: Buffer,
  metadata: Record<string, unknown>,
) {
  const e = await this.recorded(seq, "publish-ephemeral", name);
  if (e) return decode<{ id: string }>(e.result);
  if (this.state === "abandoned") return forever<{ id: string }>();
  const id = `e-${randomUUID()}`;
  const msg = { id, channel: name, metadata, publishedAt: Date.now(), data, sender: this.id };
  this.host.wake([{ kind: "ephemeral", key: name, payload: encode(msg) }]);
  this.local.push({ seq, kind: "publish-ephemeral", name, result: encode({ id }), error: null });
  return { id };
}

export async function membership(this: Execution, kind: "join" | "leave", group: string): Promise<void> {
  checkName(group, "group name");
  const seq = this.seq++;
  const e = await this.recorded(seq, kind, group);
  if (e) return void this.replayed(e);
  await this.effect(seq, kind, group, (locals) =>
    this.host.storage.groups[kind](
      this.fence,
      [...locals, { seq, kind, name: group, result: null, error: null }],
      this.host.leaseMs,
      group,
    ),
  );
}

export async function emitEvent(this: Execution, event: CloudEventInput): Promise<{ id: string }> {
  const prepared = prepareEvent(event, { maxBytes: this.host.maxPayloadBytes }); // bad input changes nothing
  const seq = this.seq++;
  const e = await this.recorded(seq, "emit", prepared.type);
  if (e) return this.replayed(e);
  return this.effect(seq, "emit", prepared.type, (locals) =>
    this.host.storage.outbox.emitFromActor(
      this.fence,
      locals,
      { seq, leaseMs: this.host.leaseMs, generation: this.generation },
      prepared,
    ),
  );
}

/** Continue-as-new: archive this generation's journal and start again with `input`. Never returns. */
export async function recur(this: Execution, input: unknown): Promise<never> {
  const bytes = this.encodeValue(input, "recur input");
  if (this.mode === "compensate") {
    this.end({ kind: "compensate" });
    return forever();
  }
  await Promise.allSettled([...this.inflight]);
  await this.live(() =>
    this.host.storage.lifecycle.recur(
      this.fence,
      this.drainLocal(),
      this.host.leaseMs,
      bytes,
      jsonText(bytes),
    ),
  );
  this.end({ kind: "recur" });
  return forever();
}
