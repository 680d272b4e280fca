import { channelName, checkMode, isDurable, sourceOf, type ChannelLike } from "../../channels.js";
import { decode, encode, jsonText } from "../../codec.js";
import { ValidationError } from "../../api/errors.js";
import { checkName } from "../../names.js";
import { prepareEvent, type CloudEventInput } from "../../outbox/cloudevent.js";
import { ephemeralMessage } from "../../messaging/ephemeral.js";
import { writeFromActor } from "../../messaging/from-actor.js";
import { prepareOutgoing } from "../../messaging/outgoing.js";
import type { PublishOptions } from "../../api/actor-context.js";
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
  await this.effect(seq, "subscribe", name, (buffered) =>
    this.host.storage.subscriptions.subscribe(
      this.fence,
      [...buffered, { seq, kind: "subscribe", name, result: encode(m), error: null }],
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
  await this.effect(seq, "unsubscribe", name, (buffered) =>
    this.host.storage.subscriptions.unsubscribe(
      this.fence,
      [...buffered, { seq, kind: "unsubscribe", name, result: null, error: null }],
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
  const out = prepareOutgoing({ op: "publish", ch, data, options }, "actor", this.host.maxPayloadBytes);
  const seq = this.seq++;
  if (!out.durable) return publishEphemeral.call(this, seq, out.name, out.payload, out.metadata);
  const e = await this.recorded(seq, "publish", out.label);
  if (e) return this.replayed(e);
  return this.effect(seq, "publish", out.label, async (buffered) => {
    const r = await writeFromActor(this.host, this.fence, out, seq, buffered);
    await this.host.debugPoint("publish:after", { actorId: this.id, seq, channel: out.name });
    return r;
  });
}

export async function send<T>(
  this: Execution,
  to: string,
  ch: ChannelLike<T>,
  data: T,
  options?: PublishOptions,
): Promise<{ id: string }> {
  const out = prepareOutgoing({ op: "send", to, ch, data, options }, "actor", this.host.maxPayloadBytes);
  const seq = this.seq++;
  const e = await this.recorded(seq, "send", out.label);
  if (e) return this.replayed(e);
  return this.effect(seq, "send", out.label, async (buffered) => {
    const r = await writeFromActor(this.host, this.fence, out, seq, buffered);
    await this.host.debugPoint("send:after", { actorId: this.id, seq, channel: out.source });
    return r;
  });
}

export async function broadcast<T>(
  this: Execution,
  group: string,
  ch: ChannelLike<T>,
  data: T,
  options?: PublishOptions,
): Promise<{ count: number }> {
  const out = prepareOutgoing(
    { op: "broadcast", group, ch, data, options },
    "actor",
    this.host.maxPayloadBytes,
  );
  const seq = this.seq++;
  const e = await this.recorded(seq, "broadcast", out.label);
  if (e) return this.replayed(e);
  return this.effect(seq, "broadcast", out.label, (buffered) =>
    writeFromActor(this.host, this.fence, out, seq, buffered),
  );
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
  const { id, wakeup } = ephemeralMessage(name, data, metadata, this.id);
  this.host.wake([wakeup]);
  this.buffered.push({ seq, kind: "publish-ephemeral", name, result: encode({ id }), error: null });
  return { id };
}

export async function membership(this: Execution, kind: "join" | "leave", group: string): Promise<void> {
  checkName(group, "group name");
  const seq = this.seq++;
  const e = await this.recorded(seq, kind, group);
  if (e) return void this.replayed(e);
  await this.effect(seq, kind, group, (buffered) =>
    this.host.storage.groups[kind](
      this.fence,
      [...buffered, { seq, kind, name: group, result: null, error: null }],
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
  return this.effect(seq, "emit", prepared.type, (buffered) =>
    this.host.storage.outbox.emitFromActor(
      this.fence,
      buffered,
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
    this.host.storage.journal.recur(
      this.fence,
      this.takeBuffered(),
      this.host.leaseMs,
      bytes,
      jsonText(bytes),
    ),
  );
  this.end({ kind: "recur" });
  return forever();
}
