import type { ChannelLike, ChannelMode, Message } from "../channels.js";
import type { Duration } from "../duration.js";
import type { SqlClient } from "../storage/database.js";
import type { CloudEventInput } from "../outbox/cloudevent.js";
import type { AttemptInfo, RetryPolicy } from "../engine/retry.js";

interface RetryingOptions {
  /** Retry policy (default: 3 attempts, 100ms initial delay, ×2 backoff). */
  retry?: RetryPolicy;
  /** Per-attempt timeout; the attempt's `signal` is aborted when it passes. */
  timeout?: Duration;
}

/** What a plain step's compensation gets besides the step's result. */
export interface CompensationInfo extends AttemptInfo {
  /**
   * Stable for this compensation across attempts and crashes (`actorId:generation:seq`):
   * pass it to the system you undo in so that a re-run after a crash is recognised.
   */
  idempotencyKey: string;
}

export interface StepOptions extends RetryingOptions {
  /**
   * Saga compensation, registered once the step succeeds: if the actor later fails or is
   * cancelled, compensations run newest first; each is marked done once it succeeds and
   * never runs after that. A crash between its effect and that mark runs it again, with
   * the same `info.idempotencyKey` (the same guarantee as the step itself).
   */
  compensate?: (result: any, info: CompensationInfo) => Promise<void> | void;
}

export interface TransactionOptions extends RetryingOptions {
  /**
   * Saga compensation for a transactional step. It runs inside the transaction that marks
   * it done: what it writes through `tx` (queries, publish/send/broadcast/emit) commits
   * with that mark, exactly once, whatever crashes.
   */
  compensate?: (result: any, tx: StepTransaction) => Promise<void> | void;
}

/**
 * The transaction a transactional step runs in: the very one that journals the step. Its
 * `query` runs your SQL; `publish / send / broadcast / emit` write messages and outbox events
 * on it, so they exist iff the step commits (wakeups are sent after the commit) and a replay
 * never repeats them. `ctx.*` calls inside the callback are errors: they would commit on
 * their own, outside this transaction.
 */
export interface StepTransaction extends SqlClient, MessageWriter {}

/** The effects an actor and a transactional step's `tx` share (each journaled once). */
export interface MessageWriter {
  /** Publishes to a broadcast or competing channel (once, even across crashes and replays). */
  publish<T>(channel: ChannelLike<T>, data: T, options?: PublishOptions): Promise<{ id: string }>;
  /** A direct message into `actorId`'s mailbox for `channel`. */
  send<T>(
    actorId: string,
    channel: ChannelLike<T>,
    data: T,
    options?: PublishOptions,
  ): Promise<{ id: string }>;
  /** One direct message to every current member of `group`. */
  broadcast<T>(
    group: string,
    channel: ChannelLike<T>,
    data: T,
    options?: PublishOptions,
  ): Promise<{ count: number }>;
  /**
   * A CloudEvent into the transactional outbox, written with this operation's journal entry
   * (once, even across crashes and replays); a relay sends it to the configured sink.
   */
  emit(event: CloudEventInput): Promise<{ id: string }>;
}

/**
 * What an actor sees. Every call is journaled: on replay it returns the recorded result
 * instead of running again, and a call that no longer matches the journal fails the
 * actor with a NonDeterminismError.
 */
export interface ActorContext extends MessageWriter {
  readonly id: string;
  readonly name: string;
  /** Runs a side effect once and records its result (at-least-once if the process dies mid-step). */
  step<T>(name: string, fn: (attempt: AttemptInfo) => Promise<T> | T, options?: StepOptions): Promise<T>;
  /**
   * Runs `fn` inside the database transaction that also journals the step: its database
   * effects happen exactly once, whatever crashes.
   */
  transaction<T>(
    name: string,
    fn: (tx: StepTransaction) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T>;
  /** Durable sleep: survives restarts; the actor uses no worker while it sleeps. */
  sleep(duration: Duration): Promise<void>;
  sleepUntil(when: Date | number): Promise<void>;
  /** Deterministic clock: the recorded time on replay. */
  now(): Promise<Date>;
  /** Deterministic random number in [0, 1). */
  random(): Promise<number>;
  /** Deterministic random UUID (v4). */
  uuid(): Promise<string>;

  // ---- channels ----
  /** Subscribes to a channel in the given mode (a channel has one mode; another mode is an error). */
  subscribe(channel: ChannelLike, mode: ChannelMode): Promise<void>;
  unsubscribe(channel: ChannelLike): Promise<void>;
  /** The next message, or null when `timeout` passes first (and null again on replay). */
  receive<T>(channel: ChannelLike<T>, options?: ReceiveOptions): Promise<Message<T> | null>;
  /** The first message on any of the channels, tagged with its channel; null on timeout. */
  receiveAny(
    channels: readonly ChannelLike<any>[],
    options?: ReceiveOptions,
  ): Promise<Message<unknown> | null>;
  // ---- process groups ----
  join(group: string): Promise<void>;
  leave(group: string): Promise<void>;
  /** Current members (recorded: the same list on replay). */
  members(group: string): Promise<string[]>;

  /**
   * Continue-as-new: same id, a fresh journal (the old one is archived and stays readable
   * through history()), the new input. Subscriptions with their cursors, mailboxes and
   * group memberships carry over. Never returns.
   */
  recur(input: unknown): Promise<never>;
}

export interface ReceiveOptions {
  /** Give up after this long and return null. Without it, wait forever. */
  timeout?: Duration;
}

export interface PublishOptions {
  metadata?: Record<string, unknown>;
}
