/**
 * Public data types that several layers share (storage, engine, the Troupe facade): defined
 * here, once, so that users' types do not live in `storage/` and storage imports them from
 * the API rather than the other way round. Exported from the package entry (src/index.ts).
 */

/** Where an actor is in its life. `compensating`: running its saga compensations before it ends. */
export type ActorStatus = "running" | "waiting" | "completed" | "failed" | "cancelled" | "compensating";

/** How a compensation ended: it ran ("done"), ran and failed (retries spent), or never ran ("skipped": no code was registered for it). */
export type CompensationOutcome = "done" | "failed" | "skipped";

/** One saga compensation as the actor's record shows it (ActorInfo.compensations). */
export interface CompensationRecord {
  /** The compensated step's name. */
  name: string;
  status: "pending" | CompensationOutcome;
  /** Why it failed or was skipped. */
  error?: { name: string; message: string; code?: string };
  /** When it was settled. */
  settledAt?: Date;
}

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

/** What `troupe.list()` selects; see docs/api.md ("Actors from outside"). */
export interface ListFilter {
  status?: ActorStatus | ActorStatus[];
  actor?: string;
  idContains?: string;
  startedAfter?: Date;
  startedBefore?: Date;
  /** JSON-path equality filters on the input: { "order.customer.id": "c-1", "items.0.sku": "x" }. */
  input?: Record<string, unknown>;
  limit?: number;
  cursor?: string;
}

/** How a channel's messages reach its subscribers; fixed by the first subscriber. */
export type ChannelMode = "broadcast" | "competing" | "direct";

/** How an error is kept in the database and handed back by `result()`. */
export interface RecordedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** Who holds an embedded database directory (the content of its lock file). */
export interface DatabaseLockHolder {
  pid: number;
  hostname: string;
  /** When the holding process started (ISO time). */
  processStartedAt: string;
  /** When it took the lock (ISO time). */
  lockedAt: string;
}
