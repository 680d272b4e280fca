import { EventEmitter } from "eventemitter3";
import { hostname } from "node:os";
import { nanoid } from "nanoid";
import type { ActorDefinition } from "./actor.js";
import type {
  ActorInfo,
  ChannelSummary,
  ChannelsOptions,
  HistoryEntry,
  ListFilter,
  ScheduleInfo,
  ScheduleOptions,
  SendOptions,
  SpawnOptions,
  TroupeEvents,
  TroupeStats,
  WorkerSummary,
} from "./api/types.js";
import type { ChannelLike } from "./channels.js";
import { NotStartedError } from "./api/errors.js";
import { Worker } from "./engine/worker/worker.js";
import { debugPointsFor } from "./internal/debug-points.js";
import { checkName } from "./names.js";
import {
  checkTroupeOptions,
  defaultLogger,
  type Logger,
  type ResolvedOptions,
  type TroupeOptions,
} from "./options.js";
import { ContextPropagation } from "./context-propagation.js";
import { openDatabase, openWakeups, workerConfig } from "./client/connect.js";
import { ActorLifecycle } from "./client/lifecycle.js";
import type { ClientDeps } from "./client/troupe-deps.js";
import { FinishedWaiters } from "./client/finished-waiters.js";
import { listen } from "./client/listening.js";
import { Queries } from "./client/queries.js";
import { ActorRegistry } from "./client/registry.js";
import { Schedules } from "./client/schedules.js";
import { bindStorage } from "./internal/storage-access.js";
import type { ReadStreamOptions, StreamPage } from "./stream/event-stream.js";
import type { StreamPosition } from "./stream/position.js";
import type { CatchUpOptions, ProjectionOptions, ProjectionProgress } from "./stream/projection.js";
import { Streams } from "./client/streams.js";
import { Listeners, type Listener } from "./listeners.js";
import { ClientMessaging } from "./client/messaging.js";
import { ActorRef } from "./ref.js";
import type { OutboxEntry, OutboxStatus } from "./outbox/outbox-entry.js";
import type { CloudEventInput } from "./outbox/cloudevent.js";
import { OutboxRelay, type OutboxRelayOptions } from "./outbox/relay.js";
import * as operations from "./client/operations.js";
import { Storage } from "./storage/storage.js";
import type { Wakeups } from "./wakeups/wakeups.js";

/**
 * A troupe worker: owns the storage connection, the wakeup transport and a worker that
 * runs actors. Every process sharing the database (and Redis) is one worker of the same troupe.
 */
export class Troupe extends EventEmitter<TroupeEvents> {
  readonly workerId: string;
  private readonly opts: ResolvedOptions;
  private readonly registry = new Map<string, ActorDefinition>();
  private readonly log: Logger;
  private storage: Storage | undefined;
  private wakeups: Wakeups | undefined;
  private worker: Worker | undefined;
  private relay: OutboxRelay | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly propagation: ContextPropagation;
  private messageListeners: Listeners | undefined;
  private readonly finished = new FinishedWaiters();
  private readonly actors: ActorRegistry;
  private readonly lifecycle: ActorLifecycle;
  private readonly queries: Queries;
  private readonly scheduling: Schedules;
  private readonly messaging: ClientMessaging;
  private readonly streams: Streams;

  constructor(private readonly options: TroupeOptions = {}) {
    super();
    this.opts = checkTroupeOptions(options);
    this.propagation = new ContextPropagation(options.context ?? []);
    this.log = options.logger ?? defaultLogger;
    this.workerId = options.workerId ?? `${hostname()}-${process.pid}-${nanoid(6)}`;
    this.actors = new ActorRegistry(this.registry);
    const deps: ClientDeps = {
      storage: (what) => this.requireStorage(what),
      wake: (wakeups) => this.wakeups?.publish(wakeups),
      maxPayloadBytes: this.opts.maxPayloadBytes,
      propagation: this.propagation,
      actors: this.actors,
      cancelled: (actorId, reason) => {
        this.emit("actor:cancelled", { actorId, reason });
      },
    };
    this.lifecycle = new ActorLifecycle(deps, (id) => this.ref(id));
    this.queries = new Queries(deps);
    this.scheduling = new Schedules(deps);
    this.messaging = new ClientMessaging(deps);
    this.streams = new Streams(deps);
    bindStorage(this, () => this.requireStorage("storageOf"));
    for (const def of options.actors ?? []) this.register(def);
  }

  /** True while calls can be served: storage open (start() under way or done) and stop() not called. */
  get started(): boolean {
    return this.storage !== undefined && this.stopping === undefined;
  }

  /** Adds an actor type this worker can run. */
  register(def: ActorDefinition): this {
    this.actors.register(def);
    return this;
  }

  /** Opens storage, migrates (unless migrate: false), connects wakeups and starts the worker. Idempotent. */
  start(): Promise<void> {
    if (this.stopping)
      return Promise.reject(new NotStartedError("this Troupe was stopped; create a new one"));
    this.starting ??= this.doStart().catch(async (err) => {
      await this.teardown();
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { db, scope } = await openDatabase(this.options.database, this.opts, this.log);
    this.storage = new Storage(db, this.opts.schema);
    if (this.opts.migrate) await this.storage.migrate();
    else await this.storage.checkSchema();
    this.wakeups = await openWakeups(this.options.redis, this.storage, scope, this.log);
    const listeners = new Listeners(this.storage, (e) =>
      this.log("warn", "a listener failed", { error: String(e) }),
    );
    this.messageListeners = listeners;
    this.wakeups.onWakeup((w) => {
      if (w.kind === "finished") this.finished.notify(w.key);
      else if (w.kind === "channel" || w.kind === "ephemeral") listeners.onWakeup(w);
    });
    await this.wakeups.start();
    if (this.options.outbox) {
      this.relay = new OutboxRelay(this.storage.outbox, { logger: this.log, ...this.options.outbox });
      this.relay.start();
    }
    if (this.options.worker === false) return;

    const config = workerConfig(this.workerId, this.opts, {
      log: this.log,
      debugPoint: debugPointsFor(this),
      propagation: this.propagation,
      emit: (event, payload) => this.emit(event as "actor:completed", payload as { actorId: string }),
    });
    this.worker = new Worker(this.storage, this.wakeups, this.registry, config);
    await this.worker.start();
  }

  /** Graceful: finishes or hands back in-flight work, then closes what troupe opened. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => {});
      await this.teardown();
    })();
    return this.stopping;
  }

  /** Reverse order of start; every step runs even if an earlier one fails. */
  private async teardown(): Promise<void> {
    const steps: [string, (() => Promise<void>) | undefined][] = [
      ["outbox relay", this.relay && (() => this.relay!.stop())],
      ["worker", this.worker && (() => this.worker!.stop())],
      ["wakeups", this.wakeups && (() => this.wakeups!.stop())],
      ["storage", this.storage && (() => this.storage!.close())],
    ];
    for (const [name, fn] of steps) {
      if (!fn) continue;
      try {
        await fn();
      } catch (err) {
        this.log("warn", `stopping ${name} failed`, { error: String(err) });
      }
    }
    this.worker = undefined;
    this.relay = undefined;
    this.wakeups = undefined;
    this.storage = undefined;
    this.finished.release();
  }

  private requireStorage(what: string): Storage {
    if (!this.storage || this.stopping) throw new NotStartedError(what);
    return this.storage;
  }

  /**
   * Creates an actor and makes it runnable. With an `id` that exists already, returns
   * that actor (idempotent); a second active actor with the same `uniqueKey` is refused.
   */
  spawn<I, O>(def: ActorDefinition<I, O> | string, input: I, options?: SpawnOptions): Promise<ActorRef<O>> {
    return this.lifecycle.spawn(def, input, options);
  }

  /**
   * Cancels an actor from any process: waits are cleared, compensations run (newest first),
   * groups are left, status becomes `cancelled` with the reason kept. Cancelling a
   * cancelled actor is a no-op; a completed or failed one is a NotCancellableError.
   */
  cancel(id: string, reason?: string): Promise<void> {
    return this.lifecycle.cancel(id, reason);
  }

  /** A handle on an actor by id (no database access until you use it). */
  ref<O = unknown>(id: string): ActorRef<O> {
    checkName(id, "actor id", 255);
    return new ActorRef<O>(id, {
      getRow: (i) => this.lifecycle.row(i),
      waitFinished: (i, ms) => this.finished.wait(i, ms),
      send: (i, ch, data, o) => this.send(i, ch, data, o),
      cancel: (i, r) => this.cancel(i, r),
    });
  }

  /** Publishes to a broadcast or competing channel. Returns the message id. */
  publish<T>(ch: ChannelLike<T>, data: T, opts?: SendOptions): Promise<{ id: string }> {
    return this.messaging.publish(ch, data, opts);
  }

  /** A direct message into `actorId`'s mailbox for `channel` (kept until the actor subscribes and reads it). */
  send<T>(actorId: string, ch: ChannelLike<T>, data: T, opts?: SendOptions): Promise<{ id: string }> {
    return this.messaging.send(actorId, ch, data, opts);
  }

  /**
   * One direct message to every current member of `group`, written in one statement. Returns how many.
   * With `idempotencyKey`, a repeat to the same group and channel returns the first call's
   * count and writes nothing (for as long as one of the first call's messages exists).
   */
  broadcast<T>(group: string, ch: ChannelLike<T>, data: T, opts?: SendOptions): Promise<{ count: number }> {
    return this.messaging.broadcast(group, ch, data, opts);
  }

  /**
   * A CloudEvent into the transactional outbox from outside any actor (source defaults to
   * troupe://troupe). An id already in the outbox is not written again. (Not `emit`: that is
   * the EventEmitter's.)
   */
  emitEvent(event: CloudEventInput): Promise<{ id: string }> {
    return this.messaging.emitEvent(event);
  }

  /** Events in the outbox by status (all four present). */
  async outboxCounts(): Promise<Record<OutboxStatus, number>> {
    return this.requireStorage("outboxCounts").outbox.counts();
  }

  /** Dead letters, oldest first (at most `limit`, default 100); pass `nextCursor` back for more. */
  async outboxDeadLetters(options?: {
    limit?: number;
    cursor?: string;
  }): Promise<{ items: OutboxEntry[]; nextCursor?: string }> {
    return this.requireStorage("outboxDeadLetters").outbox.deadLetters(options);
  }

  /** One outbox event by its CloudEvent id, with its delivery state; null when unknown. */
  async outboxEvent(eventId: string): Promise<OutboxEntry | null> {
    return this.requireStorage("outboxEvent").outbox.get(eventId);
  }

  /** Dead letters back to pending, attempts reset (by CloudEvent id, or "all"). Returns how many. */
  async redriveOutbox(eventIds: readonly string[] | "all"): Promise<{ count: number }> {
    return this.requireStorage("redriveOutbox").outbox.redrive(eventIds);
  }

  /**
   * A relay (not started) over this Troupe's own outbox: events emitted in this process wake
   * it at once, not only at its next poll. The caller starts and stops it. For a relay that
   * lives and dies with the Troupe, pass the `outbox` option instead.
   */
  createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
    return new OutboxRelay(this.requireStorage("createOutboxRelay").outbox, { logger: this.log, ...options });
  }

  /**
   * The actor's journal across all its generations (archived ones first), read from the
   * database a page at a time.
   */
  history(id: string, options?: { pageSize?: number }): AsyncIterable<HistoryEntry> {
    return this.queries.history(id, options);
  }

  /**
   * Actors matching `filter` (status, actor name, id substring, started before/after,
   * JSON-path equality on the input), newest first; pass `nextCursor` back for the next page.
   */
  list(filter?: ListFilter): Promise<{ items: ActorInfo[]; nextCursor?: string }> {
    return this.queries.list(filter);
  }

  /**
   * Counts by status, and for actors that finished in the window (`since`, default all
   * time; optionally one actor type): run durations p50/p95 in ms and completions per second.
   */
  stats(options?: { actor?: string; since?: Date }): Promise<TroupeStats> {
    return this.queries.stats(options);
  }

  /** A snapshot of one actor (with its saga compensations, if any), or null when there is none. */
  get(id: string): Promise<ActorInfo | null> {
    return this.queries.get(id);
  }

  /** Current members of a process group. */
  members(group: string): Promise<string[]> {
    return this.queries.members(group);
  }

  /** Every group that has members, with its size. */
  groups(): Promise<{ group: string; members: number }[]> {
    return this.queries.groups();
  }

  /**
   * Calls `handler` for messages published on `channel` from now on, in this process only
   * (at most once; a process that is down misses them). For code outside actors: a
   * WebSocket gateway, a UI, a log tail. Works for durable and `{ durable: false }` channels.
   * Returns a function that stops listening.
   */
  listen<T>(ch: ChannelLike<T>, handler: Listener<T>): () => void {
    return listen(ch, handler, () => (this.requireStorage("listen"), this.messageListeners!));
  }

  /**
   * A recurring actor: one run at a time, every `every` (adaptive: a run that returns
   * `{ idle: true }` or fails stretches the next interval by `backoffFactor`, up to
   * `maxInterval`; a run that did work resets it) or on a five-field UTC `cron`.
   * Runs are actors with ids `<name>#<n>`. Re-scheduling a name replaces its timing.
   */
  schedule(name: string, options: ScheduleOptions): Promise<ScheduleInfo> {
    return this.scheduling.schedule(name, options);
  }

  unschedule(name: string): Promise<boolean> {
    return this.scheduling.unschedule(name);
  }

  schedules(): Promise<ScheduleInfo[]> {
    return this.scheduling.list();
  }

  /**
   * The global event stream — journal entries (archived ones too) and published messages —
   * after a position, in an order that never skips a row committed later.
   */
  async readStream(opts: ReadStreamOptions = {}): Promise<StreamPage> {
    return this.streams.read(opts);
  }

  /** Follows the stream as the named projection until `opts.signal` aborts (at least once, resumable by name). */
  async runProjection(opts: ProjectionOptions): Promise<ProjectionProgress> {
    return this.streams.run(opts);
  }

  /** Handles what is readable now for the named projection, then returns. */
  async catchUp(opts: CatchUpOptions): Promise<ProjectionProgress> {
    return this.streams.catchUp(opts);
  }

  async projectionPosition(name: string): Promise<StreamPosition | null> {
    return this.streams.position(name);
  }

  async resetProjection(name: string, position?: StreamPosition): Promise<void> {
    return this.streams.reset(name, position);
  }

  /**
   * One round trip to the database (SELECT 1): resolves when it answers, rejects with the
   * driver's error when it does not (NotStartedError before start). For readiness probes.
   */
  async ping(): Promise<void> {
    await this.requireStorage("ping").ping();
  }

  /**
   * This worker's counters: executions started by replay vs resumed in memory, deliveries,
   * completions, and what it holds now. For monitoring; null before start.
   */
  workerStats() {
    return this.worker?.snapshot() ?? null;
  }

  // ---- operations (tools)
  /** Channels with their subscribers and backlog, by name, a page at a time (`nextCursor`). */
  async channels(options?: ChannelsOptions): Promise<{ items: ChannelSummary[]; nextCursor?: string }> {
    return operations.channels(this.requireStorage("channels"), options);
  }
  /** The worker registry, with the leader. */
  async workers(): Promise<WorkerSummary[]> {
    return operations.workers(this.requireStorage("workers"));
  }
}
