import { randomUUID } from "node:crypto";
import type { ChannelLike } from "../../channels.js";
import { toMillis, type Duration } from "../../duration.js";
import { ValidationError } from "../../api/errors.js";
import { checkName } from "../../names.js";
import type {
  ActorContext,
  ReceiveOptions,
  StepOptions,
  StepTransaction,
  TransactionOptions,
} from "../../api/actor-context.js";
import type { AttemptInfo } from "../retry.js";
import { broadcast, emitEvent, membership, publish, recur, send, subscribe, unsubscribe } from "./effects.js";
import type { Execution } from "./execution.js";
import { deterministic, deterministicAsync, insideTransaction, step, transaction } from "./steps.js";
import { receive, sleepFor, sleepUntil } from "./waits.js";

/**
 * The `ctx` an actor function gets: each method is one journaled operation of `exec`
 * (steps.ts, waits.ts, effects.ts). Frozen; bad arguments reject the returned promise.
 */
export function makeContext(exec: Execution): ActorContext {
  const ctx: ActorContext = {
    id: exec.id,
    name: exec.def.name,
    // Generic operations are instantiated before .call(), which would otherwise erase their type.
    step: <T>(name: string, fn: (a: AttemptInfo) => Promise<T> | T, options?: StepOptions) =>
      (step<T>).call(exec, name, fn, options),
    transaction: <T>(name: string, fn: (tx: StepTransaction) => Promise<T>, options?: TransactionOptions) =>
      (transaction<T>).call(exec, name, fn, options),
    sleep: (d: Duration) => sleepFor.call(exec, toMillis(d, "ctx.sleep")),
    sleepUntil: (when) => sleepUntil.call(exec, when),
    now: () => (deterministic<Date>).call(exec, "now", () => new Date()),
    random: () => (deterministic<number>).call(exec, "random", () => Math.random()),
    uuid: () => (deterministic<string>).call(exec, "uuid", () => randomUUID()),
    subscribe: (ch, mode) => subscribe.call(exec, ch, mode),
    unsubscribe: (ch) => unsubscribe.call(exec, ch),
    receive: <T>(ch: ChannelLike<T>, o?: ReceiveOptions) => (receive<T>).call(exec, [ch], "receive", o),
    receiveAny: (chs, o) => {
      if (!Array.isArray(chs) || chs.length === 0)
        throw new ValidationError("receiveAny needs a non-empty array of channels");
      return (receive<unknown>).call(exec, chs, "receiveAny", o);
    },
    publish: (ch, data, o) => publish.call(exec, ch, data, o),
    send: (to, ch, data, o) => send.call(exec, to, ch, data, o),
    join: (g) => membership.call(exec, "join", g),
    leave: (g) => membership.call(exec, "leave", g),
    members: (g) => {
      checkName(g, "group name");
      return (deterministicAsync<string[]>).call(exec, "members", g, () =>
        exec.host.storage.groups.members(g),
      );
    },
    broadcast: (g, ch, data, o) => broadcast.call(exec, g, ch, data, o),
    emit: (event) => emitEvent.call(exec, event),
    recur: (input) => recur.call(exec, input),
  };
  // Bad arguments must reject the returned promise, never throw synchronously: `await
  // ctx.sleep("x")` and `ctx.sleep("x").catch(…)` then behave the same.
  const methods = ctx as unknown as Record<string, unknown>;
  for (const [k, f] of Object.entries(methods)) {
    if (typeof f !== "function") continue;
    methods[k] = (...args: unknown[]) => {
      const inside = insideTransaction.getStore();
      if (inside?.exec === exec)
        return Promise.reject(
          new ValidationError(
            `ctx.${k} inside ctx.transaction("${inside.step}"): it would commit outside that transaction. ` +
              `Use tx.publish / tx.send / tx.broadcast / tx.emit there, and other ctx calls before or after it`,
          ),
        );
      try {
        return (f as (...a: unknown[]) => unknown)(...args);
      } catch (err) {
        return Promise.reject(err);
      }
    };
  }
  return Object.freeze(ctx);
}
