/**
 * Public data types that several layers share (storage, engine, the Troupe facade): defined
 * here, once, so that users' types do not live in `storage/` and storage imports them from
 * the API rather than the other way round. Exported from the package entry (src/index.ts).
 */
import type { ActorDefinition } from "../actor.js";
import type { Duration } from "../duration.js";

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

// ---- what Troupe's methods take and return (src/client/ implements them) ----------------

/** Options of `troupe.spawn()`. */
export interface SpawnOptions {
  /** The actor's id (default: a random id). Spawning an existing id returns that actor. */
  id?: string;
  /** At most one active (running/waiting/compensating) actor may hold a uniqueKey. */
  uniqueKey?: string;
  /** A repeat spawn with the same key returns the first actor (whatever id it was given). */
  idempotencyKey?: string;
}

/** Options of `troupe.publish/send/broadcast()` (outside actors). */
export interface SendOptions {
  metadata?: Record<string, unknown>;
  /** A repeat with the same key (per channel/mailbox) returns the first message instead of sending again. */
  idempotencyKey?: string;
}

/** What `troupe.stats()` returns. */
export interface TroupeStats {
  byStatus: Record<ActorStatus, number>;
  /** Run time (start to finish) of completed actors in the window; null when none. */
  durationMs: { p50: number | null; p95: number | null };
  completed: number;
  /** Completions per second over the window; null when it cannot be computed. */
  throughputPerSec: number | null;
}

/** One journaled operation, as history() yields it. */
export interface HistoryEntry {
  /** 0 for the first run, +1 after each recur. */
  generation: number;
  seq: number;
  kind: string;
  name: string;
  result?: unknown;
  error?: RecordedError;
  at: Date;
}

/** Options of `troupe.schedule()`. */
export interface ScheduleOptions {
  actor: ActorDefinition | string;
  input?: unknown;
  every?: Duration;
  cron?: string;
  /** Cap for the adaptive interval (default 16 × every). */
  maxInterval?: Duration;
  /** Growth of the interval after a quiet or failed run (default 2). */
  backoffFactor?: number;
  /** First run (default: now for intervals, the next cron time for cron). */
  startAt?: Date;
}

/** A schedule, as `troupe.schedule()` and `troupe.schedules()` return it. */
export interface ScheduleInfo {
  name: string;
  actor: string;
  cron: string | null;
  everyMs: number | null;
  currentIntervalMs: number | null;
  /** null while a run is in progress. */
  nextRunAt: Date | null;
  lastRun: string | null;
  runs: number;
}

/** Events a Troupe emits (namespaced): subscribe with troupe.on(name, handler). */
export interface TroupeEvents {
  "actor:completed": (e: { actorId: string }) => void;
  "actor:failed": (e: { actorId: string; error: unknown }) => void;
  "actor:cancelled": (e: { actorId: string; reason: string | null }) => void;
  error: (err: Error) => void;
}

// ---- operator read models (troupe.channels() / troupe.workers(), the dashboard) ---------

/** Options of `troupe.channels()`. */
export interface ChannelsOptions {
  /** Channels per page, 1–1000 (default 200). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** One channel as `troupe.channels()` shows it. */
export interface ChannelSummary {
  name: string;
  mode: ChannelMode;
  /** Actors subscribed now (finished actors' subscriptions are gone). */
  subscribers: number;
  /** Subscribers parked in a receive on this channel right now. */
  waiting: number;
  /**
   * Messages current subscribers have yet to read. Broadcast: messages after the slowest
   * subscriber's cursor (0 without subscribers: nobody will read them). Competing: unclaimed
   * messages (with or without subscribers). Direct: unclaimed messages in the mailboxes of
   * the actors subscribed to the channel.
   */
  backlog: number;
  /** When the oldest message of the backlog was published; null when the backlog is empty. */
  oldestBacklogAt: Date | null;
  /**
   * Subscribers with at least one message to read (broadcast: cursor behind the newest
   * message; direct: mailbox not empty); null for competing (any subscriber may take any).
   */
  behind: number | null;
}

/** One worker of the registry as `troupe.workers()` shows it. */
export interface WorkerSummary {
  id: string;
  hostname: string;
  pid: number;
  concurrency: number;
  startedAt: Date;
  heartbeatAt: Date;
  /** Milliseconds since the last heartbeat, by the database's clock. */
  heartbeatAgeMs: number;
  /** Holds the unexpired leader lock (runs timers, the sweep, schedules, retention). */
  leader: boolean;
}
