import { optionsArg } from "./arguments.js";
import { decode } from "./codec.js";
import { toMillis, type Duration } from "./duration.js";
import { ActorCancelledError, ActorFailedError, NotFoundError, TimeoutError } from "./api/errors.js";
import type { ChannelLike } from "./channels.js";
import type { ActorInfo, ActorStatus } from "./api/types.js";
import type { ActorRow } from "./storage/rows.js";

// ActorInfo lives in src/api/types.ts; re-exported for troupe.ts, which imports it from here.
export type { ActorInfo };

export function actorInfo(row: ActorRow): ActorInfo {
  const info: ActorInfo = {
    id: row.id,
    actor: row.actor,
    status: row.status,
    input: decode(row.input),
    startedAt: row.startedAt,
    updatedAt: row.updatedAt,
    generation: row.generation,
  };
  if (row.status === "completed") info.output = decode(row.output);
  if (row.error) info.error = row.error;
  if (row.finishedAt) info.finishedAt = row.finishedAt;
  return info;
}

/** What an ActorRef needs from its Troupe. */
export interface RefHost {
  getRow(id: string): Promise<ActorRow | null>;
  /** Resolves when a "finished" wakeup for `id` arrives, or after `ms`. */
  waitFinished(id: string, ms: number): Promise<void>;
  send<T>(
    id: string,
    ch: ChannelLike<T>,
    data: T,
    opts?: { metadata?: Record<string, unknown>; idempotencyKey?: string },
  ): Promise<{ id: string }>;
  cancel(id: string, reason?: string): Promise<void>;
}

/** A handle on one actor instance, usable from any process sharing the database. */
export class ActorRef<O = unknown> {
  constructor(
    readonly id: string,
    private readonly host: RefHost,
  ) {}

  /** A direct message to this actor (see Troupe.send). */
  send<T>(
    ch: ChannelLike<T>,
    data: T,
    opts?: { metadata?: Record<string, unknown>; idempotencyKey?: string },
  ): Promise<{ id: string }> {
    return this.host.send(this.id, ch, data, opts);
  }

  /** Cancels this actor (see Troupe.cancel). */
  cancel(reason?: string): Promise<void> {
    return this.host.cancel(this.id, reason);
  }

  async status(): Promise<ActorStatus> {
    const row = await this.host.getRow(this.id);
    if (!row) throw new NotFoundError(`no actor with id "${this.id}"`);
    return row.status;
  }

  /**
   * The actor's result once it completes. Rejects with ActorFailedError (carrying the
   * recorded error), ActorCancelledError, or TimeoutError when `timeout` passes first.
   */
  async result(options?: { timeout?: Duration }): Promise<O> {
    const opts = optionsArg(options, "result options");
    const timeoutMs = opts.timeout === undefined ? undefined : toMillis(opts.timeout, "result timeout");
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    let pollMs = 25;
    for (;;) {
      const row = await this.host.getRow(this.id);
      if (!row) throw new NotFoundError(`no actor with id "${this.id}"`);
      if (row.status === "completed") return decode<O>(row.output);
      if (row.status === "failed")
        throw new ActorFailedError(this.id, row.error ?? { name: "Error", message: "unknown failure" });
      if (row.status === "cancelled") throw new ActorCancelledError(this.id, row.cancelReason);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new TimeoutError(
          `actor "${this.id}" did not finish within ${timeoutMs} ms (status: ${row.status})`,
        );
      await this.host.waitFinished(this.id, Math.min(left, pollMs));
      pollMs = Math.min(1000, pollMs * 2);
    }
  }
}
