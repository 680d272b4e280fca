import { EventEmitter } from "eventemitter3";
import { hostname } from "node:os";
import { nanoid } from "nanoid";
import { toMillis, type Duration } from "../duration.js";
import { NotStartedError, SinkError, ValidationError } from "../api/errors.js";
import type { Logger } from "../options.js";
import type { OutboxStore } from "../storage/outbox-store.js";
import type { OutboxEntry } from "./outbox-entry.js";
import type { OutboxSink } from "./sink.js";
import { startInterval, startTimeout, type Timer } from "../timers.js";

export { httpSink, type HttpSinkOptions } from "./http-sink.js";
export type { OutboxSink, SendInfo } from "./sink.js";

export interface BackoffOptions {
  /** Delay before the second attempt (default "1s"). */
  initial?: Duration;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Upper bound (default "5m"). */
  max?: Duration;
  /** Fraction of the delay randomly taken off, 0–1 (default 0.2), so relays do not retry in lockstep. */
  jitter?: number;
}

export interface OutboxRelayOptions {
  sink: OutboxSink;
  /** This relay's id, recorded in locked_by (default host-pid-random). */
  id?: string;
  /** How often to look for due events when idle (default "1s"). Emits in this process wake it at once. */
  pollInterval?: Duration;
  /** Events claimed per round (default 50). */
  batchSize?: number;
  /** Sends in flight at once (default 10). */
  concurrency?: number;
  /** Attempts before an event becomes a dead letter (default 10). */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /**
   * A row in processing whose relay has not touched it for this long is reclaimed (its relay
   * died or hung) (default "5m"). Live relays touch their rows every third of it.
   */
  processingTimeout?: Duration;
  /** Sent events older than this are deleted (default "7d"); false keeps them. */
  sentRetention?: Duration | false;
  /** How long stop() waits for sends in flight before aborting them (default "10s"). */
  stopTimeout?: Duration;
  logger?: Logger;
}

/** Events an OutboxRelay emits. */
export interface OutboxRelayEvents {
  "outbox:sent": (e: { eventId: string; attempt: number }) => void;
  "outbox:failed": (e: { eventId: string; attempt: number; error: string; nextAttemptAt: Date }) => void;
  "outbox:dead": (e: { eventId: string; attempt: number; error: string }) => void;
  error: (err: Error) => void;
}

interface ResolvedRelayOptions {
  pollMs: number;
  batchSize: number;
  concurrency: number;
  maxAttempts: number;
  initialMs: number;
  factor: number;
  maxMs: number;
  jitter: number;
  processingMs: number;
  retentionMs: number | false;
  stopMs: number;
}

function positiveInt(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    throw new ValidationError(`OutboxRelay: ${what} must be a positive integer`);
  return v;
}

function resolve(o: OutboxRelayOptions): ResolvedRelayOptions {
  if (!o || typeof o.sink?.send !== "function")
    throw new ValidationError("OutboxRelay needs a sink: an object with send(event)");
  const b = o.backoff ?? {};
  const factor = b.factor ?? 2;
  if (typeof factor !== "number" || !(factor >= 1))
    throw new ValidationError("OutboxRelay: backoff.factor must be ≥ 1");
  const jitter = b.jitter ?? 0.2;
  if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1))
    throw new ValidationError("OutboxRelay: backoff.jitter must be between 0 and 1");
  const pollMs = toMillis(o.pollInterval ?? "1s", "OutboxRelay pollInterval");
  if (pollMs < 10) throw new ValidationError("OutboxRelay: pollInterval must be at least 10ms");
  const processingMs = toMillis(o.processingTimeout ?? "5m", "OutboxRelay processingTimeout");
  if (processingMs < 100) throw new ValidationError("OutboxRelay: processingTimeout must be at least 100ms");
  return {
    pollMs,
    batchSize: positiveInt(o.batchSize, "batchSize", 50),
    concurrency: positiveInt(o.concurrency, "concurrency", 10),
    maxAttempts: positiveInt(o.maxAttempts, "maxAttempts", 10),
    initialMs: toMillis(b.initial ?? "1s", "OutboxRelay backoff.initial"),
    factor,
    maxMs: toMillis(b.max ?? "5m", "OutboxRelay backoff.max"),
    jitter,
    processingMs,
    retentionMs:
      o.sentRetention === false ? false : toMillis(o.sentRetention ?? "7d", "OutboxRelay sentRetention"),
    stopMs: toMillis(o.stopTimeout ?? "10s", "OutboxRelay stopTimeout"),
  };
}

const PURGE_EVERY_MS = 60_000;
const MAX_ERROR_PAUSE_MS = 30_000;

/**
 * Moves outbox events to a sink: reclaims rows whose relay died, claims a batch of due
 * events (SKIP LOCKED, so any number of relays share the work without sending one event
 * twice), sends them, and records each outcome — sent, retry later with exponential
 * backoff, or dead letter after `maxAttempts` (or at once for a permanent SinkError).
 * Delivery is at-least-once: a relay that dies after the sink accepted an event but before
 * recording it sends that event again after `processingTimeout`.
 */
export class OutboxRelay extends EventEmitter<OutboxRelayEvents> {
  readonly id: string;
  private readonly o: ResolvedRelayOptions;
  private readonly sink: OutboxSink;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopRequested = false;
  private poked = false;
  private wake: (() => void) | undefined;
  private unlisten: (() => void) | undefined;
  private inFlight = new Set<string>();
  /** Counters for operators and tests. */
  readonly stats = { sent: 0, failed: 0, dead: 0, reclaimed: 0 };

  constructor(
    private readonly store: OutboxStore,
    options: OutboxRelayOptions,
  ) {
    super();
    this.o = resolve(options);
    this.sink = options.sink;
    this.id = options.id ?? `relay-${hostname()}-${process.pid}-${nanoid(6)}`;
    this.log = options.logger ?? (() => {});
  }

  get running(): boolean {
    return this.loop !== undefined && !this.stopRequested;
  }

  /** Starts the loop (idempotent). The outbox table must exist (Troupe.start migrates it). */
  start(): void {
    if (this.stopping) throw new NotStartedError("this OutboxRelay", { stopped: true });
    if (this.loop) return;
    this.unlisten = this.store.onEmitted(() => this.poke());
    this.loop = this.run();
  }

  /** Looks for due events now instead of at the next poll. */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /**
   * Graceful: finishes the sends in flight (up to `stopTimeout`), then aborts the rest and
   * hands their rows back untried. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopRequested = true;
      this.unlisten?.();
      this.wake?.();
      if (!this.loop) return;
      let timer: Timer | undefined;
      const timedOut = new Promise<"timeout">(
        (r) => (timer = startTimeout(() => r("timeout"), this.o.stopMs)),
      );
      const outcome = await Promise.race([this.loop.then(() => "done" as const), timedOut]);
      timer?.clear();
      if (outcome === "timeout") {
        this.log("warn", "outbox relay: sends still in flight at stop; aborting them", {
          relay: this.id,
          inFlight: this.inFlight.size,
        });
        this.abort.abort(new Error("outbox relay stopping"));
        await this.loop;
      }
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    let lastReclaim = 0;
    let lastPurge = Date.now();
    let failures = 0;
    while (!this.stopRequested) {
      let full = false;
      try {
        const now = Date.now();
        if (now - lastReclaim >= Math.min(this.o.processingMs / 2, 30_000)) {
          lastReclaim = now;
          const n = await this.store.reclaimStuck(this.o.processingMs, this.o.maxAttempts);
          if (n > 0) {
            this.stats.reclaimed += n;
            this.log("warn", "outbox relay reclaimed events stuck in processing", {
              relay: this.id,
              count: n,
            });
          }
        }
        if (this.o.retentionMs !== false && now - lastPurge >= PURGE_EVERY_MS) {
          lastPurge = now;
          await this.store.deleteSent(this.o.retentionMs);
        }
        this.poked = false;
        const batch = await this.store.claim(this.id, this.o.batchSize);
        if (batch.length > 0) await this.sendBatch(batch);
        full = batch.length === this.o.batchSize;
        failures = 0;
      } catch (err) {
        failures++;
        this.log("warn", "outbox relay round failed (retrying)", { relay: this.id, error: String(err) });
        this.emit("error", err as Error);
        await this.pause(Math.min(this.o.pollMs * 2 ** failures, MAX_ERROR_PAUSE_MS), false);
        continue;
      }
      if (!full) await this.pause(this.o.pollMs, true);
    }
  }

  /** Sleeps for `ms`, or less when stopped (or poked, if `pokeable`). */
  private pause(ms: number, pokeable: boolean): Promise<void> {
    if (this.stopRequested || (pokeable && this.poked)) return Promise.resolve();
    return new Promise<void>((done) => {
      const timer = startTimeout(finish, ms);
      function finish() {
        timer.clear();
        done();
      }
      this.wake = () => {
        if (this.stopRequested || (pokeable && this.poked)) finish();
      };
    }).finally(() => (this.wake = undefined));
  }

  private async sendBatch(batch: OutboxEntry[]): Promise<void> {
    for (const e of batch) this.inFlight.add(e.outboxId);
    // Keep the claim alive while sends run, so a slow sink is not mistaken for a dead relay.
    const heartbeat = startInterval(
      () => {
        this.store.touch(this.id, [...this.inFlight]).catch((err: unknown) =>
          this.log("warn", "outbox relay could not refresh its claims", {
            relay: this.id,
            error: String(err),
          }),
        );
      },
      Math.max(50, Math.floor(this.o.processingMs / 3)),
    );
    try {
      let next = 0;
      const lanes = Array.from({ length: Math.min(this.o.concurrency, batch.length) }, async () => {
        while (next < batch.length) {
          const entry = batch[next++]!;
          try {
            await this.deliver(entry);
          } catch (err) {
            // Recording the outcome failed (database trouble): the row stays claimed and is reclaimed later.
            this.log("warn", "outbox relay could not record a send outcome", {
              relay: this.id,
              eventId: entry.event.id,
              error: String(err),
            });
          } finally {
            this.inFlight.delete(entry.outboxId);
          }
        }
      });
      await Promise.all(lanes);
    } finally {
      heartbeat.clear();
    }
  }

  private async deliver(entry: OutboxEntry): Promise<void> {
    const attempt = entry.attempts;
    const eventId = entry.event.id;
    if (this.abort.signal.aborted) {
      await this.store.release(entry.outboxId, this.id, attempt);
      return;
    }
    try {
      await this.sink.send(entry.event, { attempt, signal: this.abort.signal });
    } catch (err) {
      if (this.abort.signal.aborted) {
        await this.store.release(entry.outboxId, this.id, attempt);
        return;
      }
      const error = err instanceof Error ? err.message : String(err);
      const permanent = err instanceof SinkError && err.permanent;
      if (permanent || attempt >= this.o.maxAttempts) {
        const why = permanent ? error : `${error} (gave up after ${attempt} attempts)`;
        if (await this.store.markFailed(entry.outboxId, this.id, why, null, attempt)) {
          this.stats.dead++;
          this.log("warn", "outbox event dead-lettered", { relay: this.id, eventId, error: why });
          this.emit("outbox:dead", { eventId, attempt, error: why });
        }
        return;
      }
      const retryAfter = err instanceof SinkError ? err.retryAfterMs : undefined;
      const nextAttemptAt = new Date(Date.now() + this.delayFor(attempt, retryAfter));
      if (await this.store.markFailed(entry.outboxId, this.id, error, nextAttemptAt, attempt)) {
        this.stats.failed++;
        this.emit("outbox:failed", { eventId, attempt, error, nextAttemptAt });
      }
      return;
    }
    if (await this.store.markSent(entry.outboxId, this.id, attempt)) {
      this.stats.sent++;
      this.emit("outbox:sent", { eventId, attempt });
    } else {
      this.log("warn", "outbox relay sent an event whose claim it had lost (it may be sent again)", {
        relay: this.id,
        eventId,
      });
    }
  }

  /** Exponential backoff with jitter; a sink's Retry-After raises it (both capped by backoff.max). */
  private delayFor(attempt: number, retryAfterMs: number | undefined): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * this.o.factor ** Math.max(0, attempt - 1));
    const jittered = base * (1 - this.o.jitter * Math.random());
    return Math.round(Math.min(this.o.maxMs, Math.max(jittered, retryAfterMs ?? 0)));
  }
}
