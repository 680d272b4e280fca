import type { ChannelLike } from "../channels.js";
import type { ContextPropagation } from "../context-propagation.js";
import { ValidationError } from "../api/errors.js";
import { prepareOutgoing, sendEphemeral, writeOutgoing } from "../messaging/outgoing.js";
import { WakeAfterCommit } from "../messaging/wake.js";
import { prepareEvent, type CloudEventInput } from "../outbox/cloudevent.js";
import type { MessageOrigin } from "../storage/message-store.js";
import type { SqlClient } from "../storage/database.js";
import type { Storage } from "../storage/storage.js";
import type { Wakeup } from "../wakeups/wakeups.js";
import type { PublishOptions, StepTransaction } from "../api/actor-context.js";

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
  const wake = new WakeAfterCommit();
  const { outbox } = host.storage;

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
      const out = prepareOutgoing({ op: "publish", ch, data, options }, "step", host.maxPayloadBytes);
      if (!out.durable) return sendEphemeral(out, wake, at.actorId);
      return writeOutgoing(host.storage, out, { by: "step", origin: origin() }, wake, {
        context: host.propagation.capture(),
        client: tx,
      });
    }),

    send: guarded("send", async <T>(to: string, ch: ChannelLike<T>, data: T, options?: PublishOptions) => {
      const out = prepareOutgoing({ op: "send", to, ch, data, options }, "step", host.maxPayloadBytes);
      return writeOutgoing(host.storage, out, { by: "step", origin: origin() }, wake, {
        context: host.propagation.capture(),
        client: tx,
      });
    }),

    broadcast: guarded(
      "broadcast",
      async <T>(group: string, ch: ChannelLike<T>, data: T, options?: PublishOptions) => {
        const out = prepareOutgoing(
          { op: "broadcast", group, ch, data, options },
          "step",
          host.maxPayloadBytes,
        );
        // Member k gets index first + k; helper calls run one at a time, so nothing else
        // takes an index before the count is known.
        const r = await writeOutgoing(host.storage, out, { by: "step", origin: origin(0) }, wake, {
          client: tx,
        });
        index += r.count;
        return r;
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
      wake.flush((w) => host.wake(w));
      if (emitted) outbox.notifyEmitted();
    },
  };
}
