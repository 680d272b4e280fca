import { optionsArg } from "./arguments.js";
import { decode } from "./codec.js";
import { toMillis, type Duration } from "./duration.js";
import { ActorFailedError, NotFoundError, TimeoutError, TroupeError, registerErrorClass } from "./errors.js";
import type { ChannelLike } from "./channels.js";
import type { ActorRow, ActorStatus, CompensationRecord } from "./storage/rows.js";

/** A snapshot of one actor, as `get()` and `list()` return it. */
export interface ActorInfo {
  id: string;
  actor: string;
  status: ActorStatus;
  input: unknown;
  output?: unknown;
  error?: { name: string; message: string; code?: string; stack?: string };
  startedAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  /** Number of `recur` restarts so far. */
  generation: number;
  /**
   * `get()` only: the saga compensations of the current generation, in the order their steps
   * ran, each `pending`, `done`, `failed` (it ran and threw) or `skipped` (it never ran: its
   * step was not reached again on replay). Absent when the actor registered none.
   */
  compensations?: CompensationRecord[];
}

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

export class ActorCancelledError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly reason: string | null,
  ) {
    super("CANCELLED", `actor "${actorId}" was cancelled${reason ? `: ${reason}` : ""}`);
  }
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

registerErrorClass("CANCELLED", ActorCancelledError);
