import { EventEmitter } from "eventemitter3";
import { hostname } from "node:os";
import { nanoid } from "nanoid";
import { checkActorDefinition, type ActorDefinition } from "./actor.js";
import { checkTime, optionsArg } from "./arguments.js";
import {
  channelName,
  checkMetadata,
  isDurable,
  requireDurable,
  mailbox,
  validatePayload,
  type ChannelLike,
} from "./channels.js";
import { decode, encode, jsonText } from "./codec.js";
import {
  ActorIdConflictError,
  NotCancellableError,
  NotFoundError,
  NotStartedError,
  UnknownActorError,
  ValidationError,
  type RecordedError,
} from "./errors.js";
import { Worker } from "./engine/worker.js";
import { mailboxSql } from "./storage/mailbox.js";
import { checkName, checkText } from "./names.js";
import {
  chooseDatabase,
  resolveOptions,
  type Logger,
  type ResolvedOptions,
  type TroupeOptions,
} from "./options.js";
import { ContextPropagation } from "./context-propagation.js";
import {
  readStream as readEventStream,
  type ReadStreamOptions,
  type StreamPage,
} from "./stream/event-stream.js";
import type { StreamPosition } from "./stream/position.js";
import {
  catchUp as catchUpProjection,
  projectionPosition as storedProjectionPosition,
  resetProjection as resetStoredProjection,
  runProjection as runStoredProjection,
  type CatchUpOptions,
  type ProjectionOptions,
  type ProjectionProgress,
} from "./stream/projection.js";
import { nextCronTime, parseCron } from "./cron.js";
import { toMillis, type Duration } from "./duration.js";
import type { ScheduleRow } from "./storage/schedule-store.js";
import { Listeners, type Listener } from "./listeners.js";
import { ActorRef, actorInfo, type ActorInfo } from "./ref.js";
import type { Database } from "./storage/database.js";
import { DEFAULT_SOURCE } from "./outbox/outbox-entry.js";
import type { OutboxStore } from "./storage/outbox-store.js";
import { prepareEvent, type CloudEventInput } from "./outbox/cloudevent.js";
import { OutboxRelay, type OutboxRelayOptions } from "./outbox/relay.js";
import * as operations from "./client/operations.js";
import type { ChannelSummary, WorkerSummary } from "./storage/read-model-store.js";
import { PgDatabase } from "./storage/pg-database.js";
import { PGliteDatabase } from "./storage/pglite-database.js";
import type { ListFilter } from "./storage/list-query.js";
import type { ActorRow, ActorStatus } from "./storage/rows.js";
import { LOCK_NS } from "./storage/sql.js";
import { Storage } from "./storage/storage.js";
import { LocalWakeups } from "./wakeups/local-wakeups.js";
import { RedisWakeups } from "./wakeups/redis-wakeups.js";
import type { Wakeups } from "./wakeups/wakeups.js";

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

function scheduleInfo(r: ScheduleRow): ScheduleInfo {
  return {
    name: r.name,
    actor: r.actor,
    cron: r.cron,
    everyMs: r.everyMs,
    currentIntervalMs: r.currentIntervalMs,
    nextRunAt: r.nextRunAt,
    lastRun: r.lastActorId,
    runs: r.runs,
  };
}

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

export interface SendOptions {
  metadata?: Record<string, unknown>;
  /** A repeat with the same key (per channel/mailbox) returns the first message instead of sending again. */
  idempotencyKey?: string;
}

export interface SpawnOptions {
  /** The actor's id (default: a random id). Spawning an existing id returns that actor. */
  id?: string;
  /** At most one active (running/waiting/compensating) actor may hold a uniqueKey. */
  uniqueKey?: string;
  /** A repeat spawn with the same key returns the first actor (whatever id it was given). */
  idempotencyKey?: string;
}

/** Events a Troupe emits (namespaced): subscribe with troupe.on(name, handler). */
export interface TroupeEvents {
  "actor:completed": (e: { actorId: string }) => void;
  "actor:failed": (e: { actorId: string; error: unknown }) => void;
  "actor:cancelled": (e: { actorId: string; reason: string | null }) => void;
  error: (err: Error) => void;
}

const defaultLogger: Logger = (level, msg, fields) => {
  if (level === "warn" || level === "error") console.error(`[troupe] ${level}: ${msg}`, fields ?? "");
};

let memoryScopes = 0;

/** Options whose mistakes would otherwise surface later, far from their cause. */
function validateConstructorOptions(o: TroupeOptions): void {
  if (o.actors !== undefined && !Array.isArray(o.actors))
    throw new ValidationError("actors must be an array of actor() definitions");
  if (o.redis !== undefined) {
    const r = o.redis as unknown;
    const isClient =
      typeof r === "object" && r !== null && typeof (r as { duplicate?: unknown }).duplicate === "function";
    if (!(typeof r === "string" && /^rediss?:\/\//.test(r)) && !isClient) {
      throw new ValidationError("redis must be a redis:// (or rediss://) URL or an ioredis client");
    }
  }
  if (o.logger !== undefined && typeof o.logger !== "function")
    throw new ValidationError("logger must be a function");
  if (o.debugPoint !== undefined && typeof o.debugPoint !== "function")
    throw new ValidationError("debugPoint must be a function");
  if (o.workerId !== undefined) checkName(o.workerId, "workerId", 200);
  for (const k of ["migrate", "worker", "preparedStatements"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "boolean")
      throw new ValidationError(`${k} must be true or false`);
  }
}

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
  private readonly finishedWaiters = new Map<string, Set<() => void>>();

  constructor(private readonly options: TroupeOptions = {}) {
    super();
    if (typeof options !== "object" || options === null)
      throw new ValidationError("Troupe options must be an object");
    validateConstructorOptions(options);
    this.opts = resolveOptions(options);
    if (options.context !== undefined && !Array.isArray(options.context))
      throw new ValidationError("context must be an array of codecs");
    this.propagation = new ContextPropagation(options.context ?? []);
    chooseDatabase(options.database); // validate now: bad input fails at construction
    this.log = options.logger ?? defaultLogger;
    this.workerId = options.workerId ?? `${hostname()}-${process.pid}-${nanoid(6)}`;
    for (const def of options.actors ?? []) this.register(def);
  }

  /** Adds an actor type this worker can run. */
  register(def: ActorDefinition): this {
    checkActorDefinition(def, "register()");
    const existing = this.registry.get(def.name);
    if (existing && existing !== def)
      throw new ValidationError(`two different actors are named "${def.name}"`);
    this.registry.set(def.name, def);
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
    const choice = chooseDatabase(this.options.database);
    let db: Database;
    let scope: string;
    if (choice.kind === "postgres") {
      db = new PgDatabase(choice.source, {
        poolSize: this.opts.poolSize,
        preparedStatements: this.opts.preparedStatements,
        statementTimeoutMs: this.opts.statementTimeoutMs,
        idleInTransactionTimeoutMs: this.opts.idleInTransactionMs,
        onError: (e) => this.log("warn", "database connection error", { error: e.message }),
      });
      scope = `${typeof choice.source === "string" ? choice.source : "pool"}|${this.opts.schema}`;
    } else {
      db = await PGliteDatabase.open(choice.dataDir);
      scope =
        choice.dataDir === undefined ? `memory-${process.pid}-${++memoryScopes}` : `pglite:${choice.dataDir}`;
    }
    this.storage = new Storage(db, this.opts.schema);
    if (this.opts.migrate) await this.storage.migrate();
    else await this.storage.checkSchema();

    const onError = (e: Error) =>
      this.log("warn", "wakeup transport error (polling covers it)", { error: e.message });
    // Redis topic: schema name for people reading MONITOR, installation id so that two
    // databases sharing a Redis (and a schema name) never hear each other.
    this.wakeups = this.options.redis
      ? new RedisWakeups(
          this.options.redis,
          `${this.opts.schema}:${await this.storage.installationId()}`,
          onError,
        )
      : new LocalWakeups(scope);
    const listeners = new Listeners(this.storage, this.wakeups, (e) =>
      this.log("warn", "a listener failed", { error: String(e) }),
    );
    this.messageListeners = listeners;
    this.wakeups.onWakeup((w) => {
      if (w.kind === "finished") this.notifyFinished(w.key);
      else if (w.kind === "channel" || w.kind === "ephemeral") listeners.onWakeup(w);
    });
    await this.wakeups.start();
    if (this.options.outbox) {
      this.relay = new OutboxRelay(this.storage.outbox, { logger: this.log, ...this.options.outbox });
      this.relay.start();
    }
    if (this.options.worker === false) return;

    const debug = this.options.debugPoint;
    this.worker = new Worker(this.storage, this.wakeups, this.registry, {
      id: this.workerId,
      concurrency: this.opts.concurrency,
      leaseMs: this.opts.leaseMs,
      pollMs: this.opts.pollMs,
      maxPayloadBytes: this.opts.maxPayloadBytes,
      maxParked: this.opts.maxParked,
      shutdownMs: this.opts.shutdownMs,
      messageRetentionMs: this.opts.messageRetentionMs,
      actorRetentionMs: this.opts.actorRetentionMs,
      log: this.log,
      debugPoint: debug ? async (n, i) => debug(n, i) : async () => {},
      propagation: this.propagation,
      emit: (event, payload) => this.emit(event as "actor:completed", payload as { actorId: string }),
    });
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
    for (const set of this.finishedWaiters.values()) for (const w of set) w();
    this.finishedWaiters.clear();
  }

  private requireStorage(what: string): Storage {
    if (!this.storage || this.stopping) throw new NotStartedError(what);
    return this.storage;
  }

  /**
   * Creates an actor and makes it runnable. With an `id` that exists already, returns
   * that actor (idempotent); a second active actor with the same `uniqueKey` is refused.
   */
  async spawn<I, O>(
    def: ActorDefinition<I, O> | string,
    input: I,
    options?: SpawnOptions,
  ): Promise<ActorRef<O>> {
    const storage = this.requireStorage("spawn");
    const opts = optionsArg(options, "spawn options");
    const resolved = this.resolveActor(def, "spawn()");
    const id = opts.id === undefined ? nanoid() : checkName(opts.id, "actor id", 255);
    const uniqueKey = opts.uniqueKey === undefined ? undefined : checkName(opts.uniqueKey, "uniqueKey", 255);
    const idempotencyKey =
      opts.idempotencyKey === undefined ? undefined : checkName(opts.idempotencyKey, "idempotencyKey", 255);
    if (idempotencyKey) {
      const first = await storage.actors.byIdempotencyKey(idempotencyKey);
      if (first) return this.ref<O>(first.id);
    }
    const bytes = encode(input, { maxBytes: this.opts.maxPayloadBytes, what: "input" });
    this.registerResolved(resolved); // only once everything is valid: a failing spawn changes nothing
    const { row, created } = await storage.actors.create({
      id,
      actor: resolved.name,
      input: bytes,
      inputJson: jsonText(bytes),
      uniqueKey,
      idempotencyKey,
      context: this.propagation.capture(),
    });
    if (!created && row.actor !== resolved.name) throw new ActorIdConflictError(row.id, row.actor);
    if (created) this.wakeups?.publish([{ kind: "actor", key: row.id }]);
    return this.ref<O>(row.id);
  }

  /** The definition `def` names, checked; not registered yet (see registerResolved). */
  private resolveActor(def: ActorDefinition | string, what: string): ActorDefinition {
    if (typeof def === "string") {
      checkName(def, "actor name");
      const found = this.registry.get(def);
      if (!found) throw new UnknownActorError(def);
      return found;
    }
    if (typeof def !== "object" || def === null)
      throw new ValidationError(`${what} expects an actor definition or a registered actor name`);
    checkActorDefinition(def, what);
    const found = this.registry.get(def.name);
    if (found && found !== def) throw new ValidationError(`another actor is registered as "${def.name}"`);
    return def;
  }

  private registerResolved(def: ActorDefinition): void {
    if (!this.registry.has(def.name)) this.register(def);
  }

  /** A handle on an actor by id (no database access until you use it). */
  ref<O = unknown>(id: string): ActorRef<O> {
    checkName(id, "actor id", 255);
    return new ActorRef<O>(id, {
      getRow: (i) => this.getRow(i),
      waitFinished: (i, ms) => this.waitFinished(i, ms),
      send: (i, ch, data, o) => this.send(i, ch, data, o),
      cancel: (i, r) => this.cancel(i, r),
    });
  }

  // ---- messaging from outside actors ------------------------------------------------

  private prepareMessage<T>(ch: ChannelLike<T>, data: T, options: SendOptions | undefined) {
    const opts = optionsArg(options, "message options");
    const name = channelName(ch);
    const payload = encode(validatePayload(ch, data), {
      maxBytes: this.opts.maxPayloadBytes,
      what: `message for "${name}"`,
    });
    const metadata = checkMetadata(opts.metadata);
    const idempotencyKey =
      opts.idempotencyKey === undefined ? undefined : checkName(opts.idempotencyKey, "idempotencyKey", 255);
    return { name, payload, metadata, idempotencyKey, context: this.propagation.capture() };
  }

  /** Publishes to a broadcast or competing channel. Returns the message id. */
  async publish<T>(ch: ChannelLike<T>, data: T, opts?: SendOptions): Promise<{ id: string }> {
    const storage = this.requireStorage("publish");
    const m = this.prepareMessage(ch, data, opts);
    if (!isDurable(ch)) return this.messageListeners!.publishEphemeral(m.name, m.payload, m.metadata);
    if ((await storage.channels.modeOf(m.name)) === "direct") {
      throw new ValidationError(`channel "${m.name}" is a direct channel: use send(actorId, channel, data)`);
    }
    const id = await storage.channels.publish({
      source: m.name,
      data: m.payload,
      metadata: m.metadata,
      idempotencyKey: m.idempotencyKey,
      context: m.context,
    });
    this.wakeups?.publish([{ kind: "channel", key: m.name }]);
    return { id };
  }

  /** A direct message into `actorId`'s mailbox for `channel` (kept until the actor subscribes and reads it). */
  async send<T>(actorId: string, ch: ChannelLike<T>, data: T, opts?: SendOptions): Promise<{ id: string }> {
    const storage = this.requireStorage("send");
    checkName(actorId, "actor id", 255);
    requireDurable(ch, "send");
    const m = this.prepareMessage(ch, data, opts);
    const mode = await storage.channels.modeOf(m.name);
    if (mode && mode !== "direct")
      throw new ValidationError(`channel "${m.name}" is a ${mode} channel: use publish`);
    const source = mailbox(m.name, actorId);
    const id = await storage.channels.publish({
      source,
      data: m.payload,
      metadata: m.metadata,
      idempotencyKey: m.idempotencyKey,
      directTo: actorId,
      context: m.context,
    });
    this.wakeups?.publish([{ kind: "channel", key: source }]);
    return { id };
  }

  /**
   * One direct message to every current member of `group`, written in one statement. Returns how many.
   * With `idempotencyKey`, a repeat to the same group and channel returns the first call's
   * count and writes nothing (for as long as one of the first call's messages exists).
   */
  async broadcast<T>(
    group: string,
    ch: ChannelLike<T>,
    data: T,
    opts?: SendOptions,
  ): Promise<{ count: number }> {
    const storage = this.requireStorage("broadcast");
    checkName(group, "group name");
    requireDurable(ch, "broadcast");
    const m = this.prepareMessage(ch, data, opts); // validates idempotencyKey like publish/send
    const mode = await storage.channels.modeOf(m.name);
    if (mode && mode !== "direct")
      throw new ValidationError(
        `channel "${m.name}" is a ${mode} channel: group broadcast sends direct messages`,
      );
    if (m.idempotencyKey === undefined) {
      const members = await storage.groups.members(group);
      const count = await storage.channels.broadcastGroup(group, m.name, m.payload, m.metadata);
      // Members that joined between the two reads still get their message by the sweep.
      this.wakeups?.publish(members.map((id) => ({ kind: "channel" as const, key: mailbox(m.name, id) })));
      return { count };
    }
    // With a key, the messages carry it as their origin (unique, like an actor's journal
    // position): origin_actor "broadcast <group> <channel> <key>" (spaces: never an actor id),
    // origin_seq the call's count, origin_index the member's rank. Under a lock on the key, a
    // repeat finds them and writes nothing. (A broadcast that reached nobody leaves nothing.)
    const origin = `broadcast ${group} ${m.name} ${m.idempotencyKey}`;
    const { count, sources } = await storage.db.transaction(async (tx) => {
      await tx.query(storage.sql("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"), [
        `${storage.schema} ${origin}`,
      ]);
      const first = await tx.query<{ n: number }>(
        storage.sql("SELECT origin_seq AS n FROM {schema}.messages WHERE origin_actor = $1 LIMIT 1"),
        [origin],
      );
      if (first.rows[0]) return { count: Number(first.rows[0].n), sources: [] as string[] };
      // As broadcastGroup: shared source locks in hash order, then one insert for all members.
      const { rows } = await tx.query<{ source: string }>(
        storage.sql(`
          WITH mem AS (
            SELECT actor_id, ${mailboxSql("$2", "actor_id")} AS source, row_number() OVER (ORDER BY actor_id) AS idx
              FROM {schema}.group_members WHERE group_name = $1),
          l AS (SELECT count(pg_advisory_xact_lock_shared(${LOCK_NS.channel}, hashtext(x.source))) AS locked
                  FROM (SELECT source FROM mem ORDER BY hashtext(source)) x)
          INSERT INTO {schema}.messages (channel, data, metadata, direct_to, origin_actor, origin_generation, origin_seq, origin_index)
          SELECT mem.source, $3, $4::jsonb, mem.actor_id, $5, 0, (SELECT count(*) FROM mem), mem.idx FROM mem, l
          RETURNING channel AS source`),
        [group, m.name, m.payload, JSON.stringify(m.metadata), origin],
      );
      return { count: rows.length, sources: rows.map((r) => r.source) };
    });
    this.wakeups?.publish(sources.map((key) => ({ kind: "channel" as const, key })));
    return { count };
  }

  /**
   * A CloudEvent into the transactional outbox from outside any actor (source defaults to
   * troupe://troupe). An id already in the outbox is not written again. (Not `emit`: that is
   * the EventEmitter's.)
   */
  async emitEvent(event: CloudEventInput): Promise<{ id: string }> {
    const storage = this.requireStorage("emitEvent");
    const prepared = prepareEvent(event, {
      maxBytes: this.opts.maxPayloadBytes,
      defaultSource: DEFAULT_SOURCE,
    });
    const { id } = await storage.outbox.emit(prepared);
    return { id };
  }

  /** The outbox: counts(), deadLetters(), redrive(), get(eventId). */
  get outbox(): OutboxStore {
    return this.requireStorage("outbox").outbox;
  }

  /**
   * The actor's journal across all its generations (archived ones first), read from the
   * database a page at a time.
   */
  async *history(id: string, options?: { pageSize?: number }): AsyncIterable<HistoryEntry> {
    checkName(id, "actor id", 255);
    const opts = optionsArg(options, "history options");
    const pageSize = opts.pageSize === undefined ? 500 : opts.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 10_000)
      throw new ValidationError("pageSize must be an integer from 1 to 10000");
    const storage = this.requireStorage("history");
    if (!(await storage.actors.get(id))) throw new NotFoundError(`no actor with id "${id}"`);
    let after = { generation: -1, seq: -1 };
    for (;;) {
      const page = await storage.journal.historyPage(id, after, pageSize);
      for (const e of page) {
        const entry: HistoryEntry = {
          generation: e.generation ?? 0,
          seq: e.seq,
          kind: e.kind,
          name: e.name,
          at: e.createdAt ?? new Date(0),
        };
        if (e.error) entry.error = e.error;
        else if (e.result) entry.result = decode(e.result);
        yield entry;
      }
      const last = page.at(-1);
      if (!last || page.length < pageSize) return;
      after = { generation: last.generation ?? 0, seq: last.seq };
    }
  }

  /**
   * Actors matching `filter` (status, actor name, id substring, started before/after,
   * JSON-path equality on the input), newest first; pass `nextCursor` back for the next page.
   */
  async list(filter?: ListFilter): Promise<{ items: ActorInfo[]; nextCursor?: string }> {
    const storage = this.requireStorage("list");
    const { rows, nextCursor } = await storage.actors.list(optionsArg(filter, "list filter"));
    return nextCursor ? { items: rows.map(actorInfo), nextCursor } : { items: rows.map(actorInfo) };
  }

  /**
   * Counts by status, and for actors that finished in the window (`since`, default all
   * time; optionally one actor type): run durations p50/p95 in ms and completions per second.
   */
  async stats(options?: { actor?: string; since?: Date }): Promise<TroupeStats> {
    const storage = this.requireStorage("stats");
    const filter = optionsArg(options, "stats filter");
    if (filter.actor !== undefined) checkName(filter.actor, "actor name");
    if (filter.since !== undefined) checkTime(filter.since, "since");
    const params = [filter.actor ?? null, filter.since ?? null];
    const { rows } = await storage.db.query<{ status: ActorStatus; n: number }>(
      storage.sql(`SELECT status, count(*)::int AS n FROM {schema}.actors
                    WHERE ($1::text IS NULL OR actor = $1) AND ($2::timestamptz IS NULL OR updated_at >= $2)
                    GROUP BY status`),
      params,
    );
    const byStatus = Object.fromEntries(
      ["running", "waiting", "completed", "failed", "cancelled", "compensating"].map((st) => [st, 0]),
    ) as Record<ActorStatus, number>;
    for (const r of rows) byStatus[r.status] = Number(r.n);
    const { rows: d } = await storage.db.query<{
      p50: number | null;
      p95: number | null;
      n: number;
      span: number | null;
    }>(
      storage.sql(`
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
               count(*)::int AS n,
               extract(epoch FROM (max(finished_at) - COALESCE($2::timestamptz, min(finished_at)))) AS span
          FROM (SELECT finished_at, extract(epoch FROM (finished_at - started_at)) * 1000 AS ms
                  FROM {schema}.actors
                 WHERE status = 'completed' AND finished_at IS NOT NULL
                   AND ($1::text IS NULL OR actor = $1) AND ($2::timestamptz IS NULL OR finished_at >= $2)) x`),
      params,
    );
    const agg = d[0];
    const span = agg?.span ? Number(agg.span) : 0;
    return {
      byStatus,
      durationMs: {
        p50: agg?.p50 == null ? null : Number(agg.p50),
        p95: agg?.p95 == null ? null : Number(agg.p95),
      },
      completed: Number(agg?.n ?? 0),
      throughputPerSec: span > 0 ? Number(agg?.n ?? 0) / span : null,
    };
  }

  /**
   * Cancels an actor from any process: waits are cleared, compensations run (newest first),
   * groups are left, status becomes `cancelled` with the reason kept. Cancelling a
   * cancelled actor is a no-op; a completed or failed one is a NotCancellableError.
   */
  async cancel(id: string, reason?: string): Promise<void> {
    checkName(id, "actor id", 255);
    if (reason !== undefined) checkText(reason, "cancel reason", 1000);
    const storage = this.requireStorage("cancel");
    const out = await storage.lifecycle.cancel(id, reason ?? null);
    switch (out.kind) {
      case "not-found":
        throw new NotFoundError(`no actor with id "${id}"`);
      case "finished":
        throw new NotCancellableError(id, out.status);
      case "cancelled":
        this.wakeups?.publish([
          { kind: "finished", key: id },
          { kind: "cancel", key: id },
        ]);
        this.emit("actor:cancelled", { actorId: id, reason: reason ?? null });
        return;
      case "compensating":
        this.wakeups?.publish([
          { kind: "cancel", key: id },
          { kind: "actor", key: id },
        ]);
        return;
      case "requested":
        this.wakeups?.publish([{ kind: "cancel", key: id }]);
        return;
      case "already-cancelled":
        return;
    }
  }

  /**
   * Calls `handler` for messages published on `channel` from now on, in this process only
   * (at most once; a process that is down misses them). For code outside actors: a
   * WebSocket gateway, a UI, a log tail. Works for durable and `{ durable: false }` channels.
   * Returns a function that stops listening.
   */
  listen<T>(ch: ChannelLike<T>, handler: Listener<T>): () => void {
    const name = channelName(ch);
    if (typeof handler !== "function") throw new ValidationError("listen() needs a handler function");
    this.requireStorage("listen");
    return this.messageListeners!.listen<T>(name, (msg) =>
      handler({ ...msg, data: validatePayload(ch, msg.data) }),
    );
  }

  /**
   * A recurring actor: one run at a time, every `every` (adaptive: a run that returns
   * `{ idle: true }` or fails stretches the next interval by `backoffFactor`, up to
   * `maxInterval`; a run that did work resets it) or on a five-field UTC `cron`.
   * Runs are actors with ids `<name>#<n>`. Re-scheduling a name replaces its timing.
   */
  async schedule(name: string, options: ScheduleOptions): Promise<ScheduleInfo> {
    const storage = this.requireStorage("schedule");
    checkName(name, "schedule name", 150);
    if (options === undefined) throw new ValidationError("schedule options are required");
    const opts = optionsArg(options, "schedule options");
    const def = this.resolveActor(opts.actor, "schedule()");
    if ((opts.every === undefined) === (opts.cron === undefined))
      throw new ValidationError("give exactly one of every or cron");
    const everyMs = opts.every === undefined ? null : toMillis(opts.every, "every");
    if (everyMs !== null && everyMs < 10) throw new ValidationError("every must be at least 10ms");
    const cron = opts.cron === undefined ? null : opts.cron;
    const parsed = cron === null ? null : parseCron(cron);
    const maxIntervalMs = opts.maxInterval === undefined ? null : toMillis(opts.maxInterval, "maxInterval");
    const backoffFactor = opts.backoffFactor ?? 2;
    if (typeof backoffFactor !== "number" || !(backoffFactor >= 1) || backoffFactor > 100) {
      throw new ValidationError("backoffFactor must be a number from 1 to 100");
    }
    if (opts.startAt !== undefined) checkTime(opts.startAt, "startAt");
    const input = encode(opts.input, { maxBytes: this.opts.maxPayloadBytes, what: "schedule input" });
    const nextRunAt = opts.startAt ?? (parsed ? nextCronTime(parsed, new Date()) : new Date());
    this.registerResolved(def); // only once everything is valid: a failing schedule changes nothing
    const row = await storage.schedules.upsert({
      name,
      actor: def.name,
      input,
      cron,
      everyMs,
      maxIntervalMs,
      backoffFactor,
      nextRunAt,
    });
    return scheduleInfo(row);
  }

  async unschedule(name: string): Promise<boolean> {
    checkName(name, "schedule name", 150);
    return this.requireStorage("unschedule").schedules.remove(name);
  }

  async schedules(): Promise<ScheduleInfo[]> {
    return (await this.requireStorage("schedules").schedules.list()).map(scheduleInfo);
  }

  /**
   * The global event stream — journal entries (archived ones too) and published messages —
   * after a position, in an order that never skips a row committed later.
   */
  async readStream(opts: ReadStreamOptions = {}): Promise<StreamPage> {
    return readEventStream(this.requireStorage("readStream"), opts);
  }

  /** Follows the stream as the named projection until `opts.signal` aborts (at least once, resumable by name). */
  async runProjection(opts: ProjectionOptions): Promise<ProjectionProgress> {
    return runStoredProjection(this.requireStorage("runProjection"), opts);
  }

  /** Handles what is readable now for the named projection, then returns. */
  async catchUp(opts: CatchUpOptions): Promise<ProjectionProgress> {
    return catchUpProjection(this.requireStorage("catchUp"), opts);
  }

  async projectionPosition(name: string): Promise<StreamPosition | null> {
    return storedProjectionPosition(this.requireStorage("projectionPosition"), name);
  }

  async resetProjection(name: string, position?: StreamPosition): Promise<void> {
    return resetStoredProjection(this.requireStorage("resetProjection"), name, position);
  }

  /** Current members of a process group. */
  async members(group: string): Promise<string[]> {
    checkName(group, "group name");
    return this.requireStorage("members").groups.members(group);
  }

  /** Every group that has members, with its size. */
  async groups(): Promise<{ group: string; members: number }[]> {
    return this.requireStorage("groups").groups.groups();
  }

  async get(id: string): Promise<ActorInfo | null> {
    checkName(id, "actor id", 255);
    const row = await this.getRow(id);
    if (!row) return null;
    const info = actorInfo(row);
    const compensations = await this.requireStorage("get").lifecycle.records(id, row.generation);
    if (compensations.length > 0) info.compensations = compensations;
    return info;
  }

  private getRow(id: string): Promise<ActorRow | null> {
    return this.requireStorage("get").actors.get(id);
  }

  private waitFinished(id: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.finishedWaiters.get(id);
      if (!set) this.finishedWaiters.set(id, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.finishedWaiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  private notifyFinished(id: string): void {
    const set = this.finishedWaiters.get(id);
    if (set) for (const w of [...set]) w();
  }

  /**
   * This worker's counters: executions started by replay vs resumed in memory, deliveries,
   * completions, and what it holds now. For monitoring; null before start.
   */
  workerStats() {
    return this.worker?.snapshot() ?? null;
  }

  /** The storage layer, for tests and tools (not part of the stable API). */
  get _storage(): Storage {
    return this.requireStorage("_storage");
  }

  // ---- operations (tools)
  /** Resolves once the database answers a round trip (a readiness probe); NOT_STARTED before start(). */
  async ping(): Promise<void> {
    return operations.ping(this.requireStorage("ping"));
  }
  /** An outbox relay on this Troupe's own outbox (its emits wake it at once); start() and stop() it yourself. */
  createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
    return operations.createOutboxRelay(this.requireStorage("createOutboxRelay"), options);
  }
  /** Channels with their subscribers and backlog, by name, a page at a time (`nextCursor`). */
  async channels(
    options?: operations.ChannelsOptions,
  ): Promise<{ items: ChannelSummary[]; nextCursor?: string }> {
    return operations.channels(this.requireStorage("channels"), options);
  }
  /** The worker registry, with the leader. */
  async workers(): Promise<WorkerSummary[]> {
    return operations.workers(this.requireStorage("workers"));
  }
}
