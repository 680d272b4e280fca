import { randomUUID } from "node:crypto";
import { optionsArg } from "../arguments.js";
import {
  channelName,
  checkMetadata,
  isDurable,
  mailbox,
  requireDurable,
  validatePayload,
  type ChannelLike,
} from "../channels.js";
import { encode } from "../codec.js";
import type { ContextPropagation } from "../context-propagation.js";
import { NotFoundError, ValidationError } from "../errors.js";
import { checkName } from "../names.js";
import { prepareEvent, type CloudEventInput } from "../outbox/cloudevent.js";
import type { MessageOrigin } from "../storage/channel-store.js";
import type { SqlClient } from "../storage/database.js";
import type { Storage } from "../storage/storage.js";
import type { Wakeup } from "../wakeups/wakeups.js";
import type { PublishOptions, StepTransaction } from "./context.js";

export interface StepTransactionHost {
  readonly storage: Storage;
  readonly maxPayloadBytes: number;
  readonly propagation: ContextPropagation;
  wake(wakeups: readonly Wakeup[]): void;
}

export interface StepTransactionScope {
  /** What the step's callback gets. */
  readonly api: StepTransaction;
  /** The callback returned: later calls on `api` are errors (the transaction is gone). */
  close(): void;
  /** The transaction committed: send the wakeups and outbox hints it earned. */
  afterCommit(): void;
}

/**
 * The `tx` a transactional step's callback gets: the step's own database transaction plus
 * publish/send/broadcast/emit written on it. Those commit iff the step commits (and with its
 * journal entry, so a replay never repeats them); wakeups go out only after that commit.
 * Messages carry the step's journal position as their origin, `index` telling them apart.
 */
export function openStepTransaction(
  tx: SqlClient,
  host: StepTransactionHost,
  at: { actorId: string; actorName: string; generation: number; seq: number; step: string },
): StepTransactionScope {
  let closed = false;
  let index = 0;
  let emitted = false;
  const wakeups: Wakeup[] = [];
  const { channels, outbox } = host.storage;

  const open = (op: string) => {
    if (closed)
      throw new ValidationError(
        `tx.${op} after transaction "${at.step}" ended: use tx only inside its callback`,
      );
  };
  const origin = (count = 1): MessageOrigin => {
    const o = { actorId: at.actorId, generation: at.generation, seq: at.seq, index };
    index += count;
    return o;
  };
  const payload = <T>(ch: ChannelLike<T>, data: T, name: string) =>
    encode(validatePayload(ch, data), { maxBytes: host.maxPayloadBytes, what: `message for "${name}"` });

  // One helper call at a time, in call order (the connection serialises them anyway), so
  // origin indexes are handed out in order even under Promise.all. Bad arguments reject
  // (never throw synchronously), like every ctx method.
  let chain: Promise<unknown> = Promise.resolve();
  const guarded =
    <A extends unknown[], R>(op: string, f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> => {
      const run = chain.then(() => {
        open(op);
        return f(...a);
      });
      chain = run.catch(() => {});
      return run;
    };

  const api: StepTransaction = {
    query: (text, params) => (open("query"), tx.query(text, params)),
    exec: (script) => (open("exec"), tx.exec(script)),

    publish: guarded("publish", async <T>(ch: ChannelLike<T>, data: T, options?: PublishOptions) => {
      const o = optionsArg(options, "tx.publish options");
      const name = channelName(ch);
      const bytes = payload(ch, data, name);
      const metadata = checkMetadata(o.metadata);
      if (!isDurable(ch)) {
        const id = `e-${randomUUID()}`;
        const msg = { id, channel: name, metadata, publishedAt: Date.now(), data: bytes, sender: at.actorId };
        wakeups.push({ kind: "ephemeral", key: name, payload: encode(msg) });
        return { id };
      }
      if ((await channels.modeOf(name, tx)) === "direct")
        throw new ValidationError(`channel "${name}" is a direct channel: use send(actorId, channel, data)`);
      const id = await channels.publishInTransaction(tx, origin(), {
        source: name,
        data: bytes,
        metadata,
        context: host.propagation.capture(),
      });
      if (id === null) throw new Error(`publish to "${name}" wrote no message`); // only a direct send can miss
      wakeups.push({ kind: "channel", key: name });
      return { id };
    }),

    send: guarded("send", async <T>(to: string, ch: ChannelLike<T>, data: T, options?: PublishOptions) => {
      const o = optionsArg(options, "tx.send options");
      checkName(to, "target actor id", 255);
      requireDurable(ch, "send");
      const name = channelName(ch);
      const bytes = payload(ch, data, name);
      const metadata = checkMetadata(o.metadata);
      const mode = await channels.modeOf(name, tx);
      if (mode && mode !== "direct")
        throw new ValidationError(`channel "${name}" is a ${mode} channel: use publish`);
      const source = mailbox(name, to);
      const id = await channels.publishInTransaction(tx, origin(), {
        source,
        data: bytes,
        metadata,
        directTo: to,
        context: host.propagation.capture(),
      });
      if (id === null) throw new NotFoundError(`no actor with id "${to}" to send to`);
      wakeups.push({ kind: "channel", key: source });
      return { id };
    }),

    broadcast: guarded(
      "broadcast",
      async <T>(group: string, ch: ChannelLike<T>, data: T, options?: PublishOptions) => {
        const o = optionsArg(options, "tx.broadcast options");
        checkName(group, "group name");
        requireDurable(ch, "broadcast");
        const name = channelName(ch);
        const bytes = payload(ch, data, name);
        const metadata = checkMetadata(o.metadata);
        const mode = await channels.modeOf(name, tx);
        if (mode && mode !== "direct")
          throw new ValidationError(
            `channel "${name}" is a ${mode} channel: group broadcast sends direct messages`,
          );
        // Member k gets index first + k; helper calls run one at a time, so nothing else
        // takes an index before the count is known.
        const sources = await channels.broadcastInTransaction(tx, origin(0), group, name, bytes, metadata);
        index += sources.length;
        for (const key of sources) wakeups.push({ kind: "channel", key });
        return { count: sources.length };
      },
    ),

    emit: guarded("emit", async (event: CloudEventInput) => {
      const prepared = prepareEvent(event, { maxBytes: host.maxPayloadBytes });
      const r = await outbox.emitInTransaction(
        tx,
        {
          actorId: at.actorId,
          actorName: at.actorName,
          generation: at.generation,
          seq: at.seq,
          index: index++,
        },
        prepared,
      );
      if (r.inserted) emitted = true;
      return { id: r.id };
    }),
  };

  return {
    api,
    close: () => void (closed = true),
    afterCommit: () => {
      if (wakeups.length > 0) host.wake(wakeups);
      if (emitted) outbox.notifyEmitted();
    },
  };
}
