import type { ChannelLike } from "../channels.js";
import type { SendOptions } from "../api/types.js";
import { prepareOutgoing, sendEphemeral, writeOutgoing } from "../messaging/outgoing.js";
import { WakeAfterCommit } from "../messaging/wake.js";
import { DEFAULT_SOURCE } from "../outbox/outbox-entry.js";
import { prepareEvent, type CloudEventInput } from "../outbox/cloudevent.js";
import type { Wakeup } from "../wakeups/wakeups.js";
import type { ClientDeps } from "./troupe-deps.js";

/**
 * troupe.publish / send / broadcast / emitEvent: messages and events from code outside
 * actors. Each write is one statement (a keyed broadcast: one short transaction) that has
 * committed when it returns, so its wakeups go out right after it.
 */
export class ClientMessaging {
  constructor(private readonly host: ClientDeps) {}

  /** Publishes to a broadcast or competing channel. Returns the message id. */
  async publish<T>(ch: ChannelLike<T>, data: T, opts?: SendOptions): Promise<{ id: string }> {
    const storage = this.host.storage("publish");
    const out = prepareOutgoing(
      { op: "publish", ch, data, options: opts },
      "client",
      this.host.maxPayloadBytes,
    );
    const context = this.host.propagation.capture();
    const wake = new WakeAfterCommit();
    const r = out.durable
      ? await writeOutgoing(storage, out, { by: "client" }, wake, { context })
      : sendEphemeral(out, wake);
    wake.flush(this.publishWakeups);
    return r;
  }

  /** A direct message into `actorId`'s mailbox for `channel` (kept until the actor subscribes and reads it). */
  async send<T>(actorId: string, ch: ChannelLike<T>, data: T, opts?: SendOptions): Promise<{ id: string }> {
    const storage = this.host.storage("send");
    const out = prepareOutgoing(
      { op: "send", to: actorId, ch, data, options: opts },
      "client",
      this.host.maxPayloadBytes,
    );
    const wake = new WakeAfterCommit();
    const r = await writeOutgoing(storage, out, { by: "client" }, wake, {
      context: this.host.propagation.capture(),
    });
    wake.flush(this.publishWakeups);
    return r;
  }

  /**
   * One direct message to every current member of `group`, written in one statement. Returns how many.
   * With `idempotencyKey`, a repeat to the same group and channel returns the first call's
   * count and writes nothing (for as long as one of the first call's messages exists).
   */
  async broadcast<T>(
    group: string,
    ch: ChannelLike<T>,
    data: T,
    opts?: SendOptions,
  ): Promise<{ count: number }> {
    const storage = this.host.storage("broadcast");
    const out = prepareOutgoing(
      { op: "broadcast", group, ch, data, options: opts },
      "client",
      this.host.maxPayloadBytes,
    );
    const wake = new WakeAfterCommit();
    const r = await writeOutgoing(storage, out, { by: "client" }, wake);
    wake.flush(this.publishWakeups);
    return r;
  }

  /**
   * A CloudEvent into the transactional outbox from outside any actor (source defaults to
   * troupe://troupe). An id already in the outbox is not written again.
   */
  async emitEvent(event: CloudEventInput): Promise<{ id: string }> {
    const storage = this.host.storage("emitEvent");
    const prepared = prepareEvent(event, {
      maxBytes: this.host.maxPayloadBytes,
      defaultSource: DEFAULT_SOURCE,
    });
    const { id } = await storage.outbox.emit(prepared);
    return { id };
  }

  private readonly publishWakeups = (w: readonly Wakeup[]) => this.host.wake(w);
}
