import { checkTime, optionsArg } from "../../arguments.js";
import { channelName, validatePayload, type ChannelLike, type Message } from "../../channels.js";
import { decode } from "../../codec.js";
import { toMillis } from "../../duration.js";
import { ValidationError } from "../../api/errors.js";
import { errorFromRecord, recordError } from "../../api/recorded-errors.js";
import type { WaitSpec } from "../../storage/actor-store.js";
import type { JournalEntry } from "../../storage/rows.js";
import type { ReceiveOptions } from "../../api/actor-context.js";
import type { Execution } from "./execution.js";
import { isJournaledError } from "./failures.js";

// The ctx operations that wait: sleep and receive. Each either completes at once (a
// deadline already passed, a message already pending) or parks the execution at its wait
// (see Execution.waitFor). Written as methods of the Execution (`this` bound by ctx.ts).

export async function sleepFor(this: Execution, ms: number): Promise<void> {
  const seq = this.seq++;
  const e = await this.recorded(seq, "sleep", "");
  if (e) return;
  if (ms <= 0) {
    await this.live(() => this.append({ seq, kind: "sleep", name: "", result: null, error: null }));
    return;
  }
  await sleepAt.call(this, seq, new Date(Date.now() + ms));
}

export async function sleepUntil(this: Execution, when: Date | number): Promise<void> {
  const at = checkTime(when, "ctx.sleepUntil", { numbers: true });
  const seq = this.seq++;
  const e = await this.recorded(seq, "sleep", "");
  if (e) return;
  if (at <= Date.now()) {
    await this.live(() => this.append({ seq, kind: "sleep", name: "", result: null, error: null }));
    return;
  }
  await sleepAt.call(this, seq, new Date(at));
}

async function sleepAt(this: Execution, seq: number, until: Date): Promise<void> {
  const wait: WaitSpec = { seq, kind: "sleep", name: "", until };
  await this.waitFor(wait, async (buffered) => ({
    parkedAt: await this.host.storage.actors.park(this.fence, wait, buffered),
  }));
}

export async function receive<T>(
  this: Execution,
  chs: readonly ChannelLike<any>[],
  kind: "receive" | "receiveAny",
  options?: ReceiveOptions,
) {
  const o = optionsArg(options, `${kind} options`);
  const names = chs.map((c) => channelName(c));
  if (new Set(names).size !== names.length)
    throw new ValidationError(`${kind}: the same channel is listed twice`);
  const timeoutMs = o.timeout === undefined ? undefined : toMillis(o.timeout, `${kind} timeout`);
  const name = names.join("|");
  const seq = this.seq++;
  let e = await this.recorded(seq, kind, name);
  if (!e) {
    const wait: WaitSpec = {
      seq,
      kind,
      name,
      until: timeoutMs === undefined ? undefined : new Date(Date.now() + timeoutMs),
    };
    e = await waitForMessage.call(this, wait, names);
  }
  if (e.error) throw errorFromRecord(e.error);
  const msg = decode<Message<T> | undefined>(e.result);
  if (!msg) return null; // timed out
  const handle = chs[names.indexOf(msg.channel)] ?? msg.channel;
  msg.data = validatePayload(handle, msg.data) as T;
  return msg;
}

async function waitForMessage(this: Execution, wait: WaitSpec, names: string[]): Promise<JournalEntry> {
  try {
    return await this.waitFor(wait, (buffered) =>
      this.host.storage.subscriptions.receiveOrWait(
        this.fence,
        buffered,
        this.host.leaseMs,
        wait,
        names,
        () => this.host.debugPoint("receive:before-wait", { actorId: this.id, channels: names }),
      ),
    );
  } catch (err) {
    if (isJournaledError(err)) {
      await this.live(() =>
        this.append({
          seq: wait.seq,
          kind: wait.kind,
          name: wait.name,
          result: null,
          error: recordError(err),
        }),
      );
    }
    throw err;
  }
}
