import type { ContextPropagation } from "../context-propagation.js";
import type { Fence, JournalEntry } from "../storage/rows.js";
import type { Storage } from "../storage/storage.js";
import type { Wakeup } from "../wakeups/wakeups.js";
import { writeOutgoing, type Outgoing } from "./outgoing.js";
import { WakeAfterCommit } from "./wake.js";

/** What an actor's send needs from the worker running it. */
export interface ActorSendHost {
  readonly storage: Storage;
  readonly leaseMs: number;
  readonly propagation: ContextPropagation;
  wake(wakeups: readonly Wakeup[]): void;
}

/**
 * ctx.publish / send / broadcast, live: the message, the buffered buffered entries and the op's
 * journal entry at `seq` are one statement under the actor's lease fence (a replay finds the
 * entry and never sends again); the wakeups go out once it has committed.
 */
export async function writeFromActor<O extends Outgoing>(
  host: ActorSendHost,
  fence: Fence,
  out: O,
  seq: number,
  buffered: readonly JournalEntry[],
): Promise<O extends { op: "broadcast" } ? { count: number } : { id: string }> {
  const wake = new WakeAfterCommit();
  const entry = { seq, kind: out.op, name: out.label };
  const r = await writeOutgoing(
    host.storage,
    out,
    { by: "actor", fence, buffered, leaseMs: host.leaseMs, entry },
    wake,
    {
      context: host.propagation.capture(),
    },
  );
  wake.flush((w) => host.wake(w));
  return r;
}
