import { hostname } from "node:os";
import type { ActorDefinition } from "../actor.js";
import { encode } from "../codec.js";
import { LockLostError, recordError, UnknownActorError, type RecordedError } from "../errors.js";
import type { ContextPropagation } from "../context-propagation.js";
import type { WaitSpec } from "../storage/actor-store.js";
import type { ActorRow, JournalEntry } from "../storage/rows.js";
import type { Storage } from "../storage/storage.js";
import type { Wakeup, Wakeups } from "../wakeups/wakeups.js";
import type { ActivationResult } from "./execution/activation.js";
import { Execution, type ExecutionDeps } from "./execution/execution.js";
import { BackgroundLoops } from "./background.js";
import { DatabaseOutage } from "./outage.js";
import { delay, startInterval, startTimeout, type Timer } from "../timers.js";

export interface WorkerConfig {
  id: string;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  maxPayloadBytes: number;
  /** Suspended executions kept in memory for resume without replay. */
  maxParked: number;
  shutdownMs: number;
  /** Read messages older than this are deleted by the leader. */
  messageRetentionMs: number;
  actorRetentionMs: number | undefined;
  log: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  debugPoint: (name: string, info: Record<string, unknown>) => Promise<void>;
  propagation: ContextPropagation;
  emit: (event: string, payload: Record<string, unknown>) => void;
}

/** Waits set locally are fired by a local timer when due within this window; the leader's poll is the backstop. */
const LOCAL_TIMER_WINDOW_MS = 10 * 60_000;

/**
 * A worker claims runnable actors (by wakeup and by polling), runs them under a lease it
 * keeps refreshing, and parks suspended executions in memory for cheap resume.
 */
export class Worker {
  readonly leaseMs: number;
  readonly maxPayloadBytes: number;
  private readonly stopper = new AbortController();
  /** What every execution of this worker runs on. */
  private readonly executionDeps: ExecutionDeps;
  private readonly running = new Map<string, Execution>();
  private readonly parked = new Map<string, Execution>(); // LRU by insertion order
  private readonly localTimers = new Map<string, Timer>();
  private pollTimer: Timer | undefined;
  private heartbeatTimer: Timer | undefined;
  private readonly background: BackgroundLoops;
  /** Backoff while the database is away; shared with the background loops. */
  private readonly outage: DatabaseOutage;
  private claiming = false;
  private claimLoop: Promise<void> | undefined;
  private deliveryLoop: Promise<void> | undefined;
  /** Slots promised to claims in flight and to claimed actors not yet running: concurrency is a hard limit. */
  private reserved = 0;
  /**
   * A wakeup (actor or channel) found no free slot while some were only reserved: act on it
   * when the reservation returns, since the claim holding them may not have seen it.
   */
  private claimTurnedAway = false;
  private deliveryTurnedAway = false;
  private readonly starting = new Set<string>();
  private readonly claimingIds = new Set<string>();
  private claimAgain = false;
  private readonly segments = new Set<Promise<void>>();
  private readonly dirtySources = new Set<string>();
  /** Counters for operators (and tests): how executions were (re)started. */
  readonly stats = { replays: 0, resumes: 0, deliveries: 0, completed: 0, failed: 0 };
  private delivering = false;

  constructor(
    readonly storage: Storage,
    private readonly wakeups: Wakeups,
    private readonly actors: ReadonlyMap<string, ActorDefinition>,
    private readonly cfg: WorkerConfig,
  ) {
    this.leaseMs = cfg.leaseMs;
    this.maxPayloadBytes = cfg.maxPayloadBytes;
    this.outage = new DatabaseOutage(cfg.log);
    this.executionDeps = {
      storage,
      leaseMs: cfg.leaseMs,
      maxPayloadBytes: cfg.maxPayloadBytes,
      propagation: cfg.propagation,
      wake: (w) => wakeups.publish(w),
      debugPoint: cfg.debugPoint,
      stopping: this.stopper.signal,
    };
    this.background = new BackgroundLoops(storage, wakeups, {
      outage: this.outage,
      workerId: cfg.id,
      leaseMs: cfg.leaseMs,
      pollMs: cfg.pollMs,
      messageRetentionMs: cfg.messageRetentionMs,
      actorRetentionMs: cfg.actorRetentionMs,
      log: cfg.log,
    });
  }

  private get stopping(): boolean {
    return this.stopper.signal.aborted;
  }

  get id(): string {
    return this.cfg.id;
  }

  snapshot() {
    return {
      ...this.stats,
      running: this.running.size,
      parked: this.parked.size,
      // capacity bookkeeping: free = concurrency − running − starting − reserved
      starting: this.starting.size,
      reserved: this.reserved,
      free: this.free(),
      leader: this.background.isLeader,
    };
  }

  async start(): Promise<void> {
    await this.storage.locks.registerWorker({
      id: this.cfg.id,
      hostname: hostname(),
      pid: process.pid,
      concurrency: this.cfg.concurrency,
    });
    this.wakeups.onWakeup((w) => this.onWakeup(w));
    // Hints were lost while disconnected: claim, and deliver whatever waits with messages pending.
    this.wakeups.onReconnect(() => void this.poll());
    // The database is back: wakeups sent while it was away were lost (and a long outage may
    // have had us pruned from the worker registry): register again, claim and sweep.
    this.outage.onRecovered(() => {
      if (this.stopping) return;
      void this.registerAgain();
      void this.poll();
      void this.background.tick();
    });
    this.heartbeatTimer = startInterval(
      () => void this.heartbeat(),
      Math.max(50, Math.floor(this.leaseMs / 3)),
    );
    // Polling fallback: claim runnable actors, and deliver to waiting actors of our types
    // whose wakeup was lost (every worker sweeps for its own types: pools may be split).
    this.pollTimer = startInterval(() => void this.poll(), this.cfg.pollMs);
    this.background.start();
    this.kick();
  }

  private async registerAgain(): Promise<void> {
    try {
      await this.storage.locks.registerWorker({
        id: this.cfg.id,
        hostname: hostname(),
        pid: process.pid,
        concurrency: this.cfg.concurrency,
      });
    } catch (err) {
      this.dbFailed(err, "registering the worker again", "could not register the worker again");
    }
  }

  /** A round failed: a database outage goes to the backoff (logged once); anything else is logged as `msg`. */
  private dbFailed(err: unknown, during: string, msg: string, fields: Record<string, unknown> = {}): void {
    if (!this.outage.failed(err, during)) this.cfg.log("warn", msg, { ...fields, error: String(err) });
  }

  /** Graceful: stop claiming, let running segments finish (up to shutdownMs), hand back the rest. */
  async stop(): Promise<void> {
    this.stopper.abort();
    this.pollTimer?.clear();
    for (const t of this.localTimers.values()) t.clear();
    this.localTimers.clear();
    await this.background.stop();
    await Promise.allSettled([this.claimLoop, this.deliveryLoop]);
    const deadline = delay(this.cfg.shutdownMs);
    await Promise.race([Promise.allSettled([...this.segments]), deadline]);
    for (const exec of this.running.values()) {
      await this.storage.actors.release(exec.fence).catch(() => {});
    }
    this.running.clear();
    this.parked.clear();
    this.heartbeatTimer?.clear();
    await this.storage.actors.clearSticky(this.cfg.id).catch(() => {});
    await this.storage.locks.removeWorker(this.cfg.id).catch(() => {});
  }

  // ---- parking -----------------------------------------------------------------------

  /** An activation parked at `wait`: keep the execution for an in-memory resume, arm the wait's timer. */
  private park(exec: Execution, wait: WaitSpec): void {
    // Superseded meanwhile (we claimed the actor again): the newer execution holds the slot.
    if (this.running.get(exec.id) !== exec) return;
    this.dropRunning(exec);
    // Claim again only if we had been full (the common park must not cost a query).
    if (this.free() === 1) queueMicrotask(() => this.slotFreed());
    else if (this.dirtySources.size > 0 && !this.delivering) this.deliveryLoop = this.drainDirtySources();
    this.parked.delete(exec.id);
    this.parked.set(exec.id, exec);
    while (this.parked.size > this.cfg.maxParked) {
      const oldest = this.parked.keys().next().value as string;
      this.parked.delete(oldest);
    }
    if (wait.until) this.armLocalTimer(exec.id, wait.seq, wait.until);
  }

  // ---- claiming --------------------------------------------------------------------------

  private onWakeup(w: Wakeup): void {
    if (this.stopping) return;
    if (w.kind === "actor") {
      void this.claimOne(w.key);
    } else if (w.kind === "cancel") {
      void this.onCancelHint(w.key);
    } else if (w.kind === "channel") {
      this.dirtySources.add(w.key);
      if (!this.delivering) this.deliveryLoop = this.drainDirtySources();
    }
  }

  /** A hint is not the truth: act on a cancel only once the database has the request. */
  private async onCancelHint(id: string): Promise<void> {
    if (!this.running.has(id) && !this.parked.has(id)) return;
    try {
      const row = await this.storage.actors.get(id);
      if (!row?.cancelRequestedAt) return;
    } catch {
      return; // the heartbeat reads cancel requests from the database too
    }
    this.running.get(id)?.requestCancel();
    this.parked.delete(id);
  }

  /** Delivers to waiting subscribers of the sources named by wakeups, in batches, one round at a time. */
  private async drainDirtySources(): Promise<void> {
    this.delivering = true;
    try {
      while (this.dirtySources.size > 0 && !this.stopping && this.free() > 0) {
        const batch = [...this.dirtySources].slice(0, 500);
        for (const src of batch) this.dirtySources.delete(src);
        const n = await this.deliver(batch, true);
        // A round hands each waiting actor one message: more subscribers (or more messages
        // for a receiveAny waiter that just got one) may remain, and capacity may have cut it
        // short. Keep the sources until a round delivers nothing (or a slot frees), not the sweep.
        if (n > 0) for (const src of batch) this.dirtySources.add(src);
      }
      if (this.dirtySources.size > 0 && this.reserved > 0) this.deliveryTurnedAway = true;
    } finally {
      this.delivering = false;
    }
  }

  /** A running execution parked or ended: claim more work and resume deliveries held back by capacity. */
  private slotFreed(): void {
    if (this.stopping) return;
    this.kick();
    if (this.dirtySources.size > 0 && !this.delivering) this.deliveryLoop = this.drainDirtySources();
  }

  /**
   * Lock-first delivery for `sources`, resuming each delivered actor here at once. With
   * `stickyOnly`, actors parked on another live worker are left to it (the sweep delivers
   * them if that worker died).
   */
  async deliver(sources: readonly string[], stickyOnly: boolean): Promise<number> {
    const free = this.free();
    if (free <= 0 || this.stopping || this.outage.backingOff) return 0; // the sweep after recovery delivers
    let held = free;
    this.reserved += held;
    try {
      const delivered = await this.storage.channels.deliver(
        sources,
        this.cfg.id,
        this.leaseMs,
        free,
        stickyOnly,
        this.types,
      );
      this.unreserve(held);
      held = 0;
      this.outage.succeeded();
      this.stats.deliveries += delivered.length;
      for (const d of delivered) this.launch(d.row, d.entry);
      await this.cfg.debugPoint("deliver:done", {
        sources,
        delivered: delivered.map((d) => d.row.id),
        stickyOnly,
      });
      return delivered.length;
    } catch (err) {
      this.unreserve(held); // once: a failure after the delivery (a debug point) must not return them twice
      this.dbFailed(err, "delivery", "delivery failed; the sweep will retry");
      return 0;
    }
  }

  private polling = false;

  /**
   * One polling round: claim runnable actors, then sweep. In sequence, not side by side: a
   * claim in flight holds every free slot (reserved) until its query returns, so a sweep
   * started next to it would always find the worker full and never run.
   */
  private async poll(): Promise<void> {
    if (this.polling || this.stopping || this.outage.backingOff) return;
    this.polling = true;
    try {
      this.kick();
      await this.claimLoop;
      await this.sweep();
    } finally {
      this.polling = false;
    }
  }

  /** Forced delivery for every source with a waiting subscriber and a pending message. */
  async sweep(): Promise<void> {
    // Let in-flight claims and deliveries give back the slots they hold first (see poll).
    await Promise.allSettled([this.claimLoop, this.deliveryLoop]);
    if (this.stopping || this.free() <= 0) return;
    try {
      const sources = await this.storage.channels.pendingSources(1000, this.types);
      if (sources.length > 0) await this.deliver(sources, false);
    } catch (err) {
      this.dbFailed(err, "sweep", "sweep for pending deliveries failed");
    }
  }

  /** Gives reserved slots back; wakeups turned away meanwhile get their turn now. */
  private unreserve(n: number): void {
    this.reserved -= n;
    if (n <= 0 || this.free() <= 0 || !(this.claimTurnedAway || this.deliveryTurnedAway)) return;
    queueMicrotask(() => {
      if (this.stopping) return;
      // Deliveries first: a claim round reserves every free slot while its query runs.
      if (this.deliveryTurnedAway && !this.delivering) {
        this.deliveryTurnedAway = false;
        if (this.dirtySources.size > 0) this.deliveryLoop = this.drainDirtySources();
      }
      if (this.claimTurnedAway) {
        this.claimTurnedAway = false;
        this.kick();
      }
    });
  }

  private free(): number {
    return this.cfg.concurrency - this.running.size - this.starting.size - this.reserved;
  }

  private get types(): string[] {
    return [...this.actors.keys()];
  }

  /** Forget an execution as running, unless a newer one for the same actor already took its place. */
  private dropRunning(exec: Execution): void {
    if (this.running.get(exec.id) === exec) this.running.delete(exec.id);
  }

  /** Claims runnable actors up to capacity; coalesces concurrent triggers into one more round. */
  kick(): void {
    if (this.stopping || this.outage.backingOff) return; // recovery claims
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    this.claimLoop = (async () => {
      try {
        do {
          this.claimAgain = false;
          const free = this.free();
          if (free <= 0) break;
          this.reserved += free;
          let rows: ActorRow[];
          try {
            rows = await this.storage.actors.claimRunnable(this.cfg.id, this.leaseMs, free, this.types);
            this.outage.succeeded();
          } finally {
            this.unreserve(free);
          }
          for (const row of rows) this.launch(row);
          if (rows.length === free) this.claimAgain = true; // there may be more
        } while (this.claimAgain && !this.stopping);
      } catch (err) {
        this.dbFailed(err, "claim", "claiming runnable actors failed");
      } finally {
        this.claiming = false;
      }
    })();
  }

  private async claimOne(id: string): Promise<void> {
    if (this.running.has(id) || this.starting.has(id) || this.claimingIds.has(id)) return;
    if (this.outage.backingOff) return; // recovery claims every runnable actor
    if (this.free() <= 0) {
      if (this.reserved > 0) this.claimTurnedAway = true; // a claim round once they return finds it
      return;
    }
    this.claimingIds.add(id);
    let held = 1;
    this.reserved += held;
    try {
      const row = await this.storage.actors.claim(id, this.cfg.id, this.leaseMs, this.types);
      this.unreserve(held);
      held = 0;
      if (row) this.launch(row);
    } catch (err) {
      this.unreserve(held);
      this.dbFailed(err, "claim", "claiming actor failed", { actorId: id });
    } finally {
      this.claimingIds.delete(id);
    }
  }

  /** Runs a claimed actor: resumes its parked execution in memory when still valid, else replays. */
  private launch(row: ActorRow, entry?: JournalEntry): void {
    this.starting.add(row.id);
    const p = this.resumeOrReplay(row, entry)
      .catch((err) => {
        // The database went away while starting or ending it: it is replayed after its lease.
        if (!this.outage.failed(err, "running an actor"))
          this.cfg.log("error", "actor execution crashed", { actorId: row.id, error: String(err) });
      })
      .finally(() => {
        this.starting.delete(row.id);
        this.segments.delete(p);
      });
    this.segments.add(p);
  }

  private async resumeOrReplay(row: ActorRow, delivered?: JournalEntry): Promise<void> {
    // We re-claimed an actor we still run: our lease had expired (we stalled), so that
    // execution is fenced off already. Replace it under the new lease.
    this.running.get(row.id)?.supersede();
    const def = this.actors.get(row.actor);
    if (!def) {
      // Another deployment may know this actor type: hand it back rather than fail it.
      this.cfg.log("warn", "claimed an actor of an unknown type; handing it back", {
        actorId: row.id,
        error: new UnknownActorError(row.actor).message,
      });
      await this.storage.actors.release({
        actorId: row.id,
        leaseVersion: row.leaseVersion,
        worker: this.cfg.id,
      });
      return;
    }
    let exec: Execution | undefined;
    const parked = this.parked.get(row.id);
    if (parked && row.status === "running" && !row.cancelRequestedAt) {
      this.parked.delete(row.id);
      const at = parked.parkedAt;
      const entry = !at
        ? null
        : delivered?.seq === at.seq
          ? delivered
          : await this.storage.journal.entry(row.id, at.seq);
      if (entry && parked.resume(row, entry)) exec = parked;
    }
    if (exec) this.stats.resumes++;
    else this.stats.replays++;
    this.parked.delete(row.id);
    exec ??= new Execution(this.executionDeps, def, row, this.cfg.id);
    this.running.set(row.id, exec);
    this.starting.delete(row.id);
    const end = await exec.run();
    await this.settle(exec, end);
  }

  private async settle(exec: Execution, { ending: end, fence }: ActivationResult): Promise<void> {
    switch (end.kind) {
      case "parked":
        this.park(exec, end.wait);
        return;
      case "abandoned":
        this.dropRunning(exec);
        if (end.reason !== "lock-lost") {
          await this.storage.actors.release(fence).catch(() => {});
          if (end.reason === "transient") this.kick(); // replay from the journal: nothing half-done was committed
        }
        this.cfg.log("info", "execution abandoned", { actorId: exec.id, reason: end.reason });
        return;
      case "recur": {
        // The next generation starts here, under the same lease, from an empty journal.
        this.dropRunning(exec);
        const row = await this.storage.actors.get(exec.id);
        if (row && row.leaseVersion === fence.leaseVersion && row.leaseOwner === this.cfg.id) {
          const next = new Execution(this.executionDeps, exec.def, row, this.cfg.id);
          this.running.set(row.id, next);
          await this.settle(next, await next.run());
        }
        return;
      }
      case "cancel":
      case "compensate":
        await this.compensateAndFinish(exec, end.kind === "cancel" ? null : undefined);
        return;
      case "returned": {
        if (exec.mode === "compensate") {
          await this.compensateAndFinish(exec, undefined);
          return;
        }
        let output: Buffer;
        try {
          output = encode(end.value, {
            maxBytes: this.maxPayloadBytes,
            what: `result of actor "${exec.id}"`,
          });
        } catch (err) {
          if (exec.hasCompensations) await this.compensateAndFinish(exec, recordError(err));
          else await this.finishFailed(exec, err);
          return;
        }
        await this.finishWith(exec, { status: "completed", output });
        return;
      }
      case "threw":
      case "fatal":
        if (exec.mode === "compensate" || exec.hasCompensations) {
          await this.compensateAndFinish(exec, recordError(end.error));
          return;
        }
        await this.finishFailed(exec, end.error);
        return;
    }
  }

  /**
   * Saga ending: enter `compensating` (remembering the error), run the pending
   * compensations newest first, then finish as cancelled (if a cancel was requested) or
   * failed. `error` undefined = keep what the row has (a resumed compensation).
   */
  private async compensateAndFinish(exec: Execution, error: RecordedError | null | undefined): Promise<void> {
    const fence = exec.fence;
    try {
      const row = await this.storage.actors.get(exec.id);
      if (!row || row.leaseVersion !== fence.leaseVersion) throw new LockLostError(exec.id);
      const cancelled = row.cancelRequestedAt !== null;
      if (
        row.status !== "compensating" &&
        (exec.hasCompensations || (await this.storage.lifecycle.hasPending(exec.id, exec.generation)))
      ) {
        await this.storage.lifecycle.beginCompensation(fence, this.leaseMs, error ?? null, exec.drainLocal());
      }
      await exec.runCompensations();
      // From the table, not this run alone: a resumed compensation may have settled some before.
      const records = await this.storage.lifecycle.records(exec.id, exec.generation);
      const failed = records.filter((r) => r.status === "failed").map((r) => r.name);
      const skipped = records.filter((r) => r.status === "skipped").map((r) => r.name);
      const note =
        (failed.length ? ` (compensations that failed: ${failed.join(", ")})` : "") +
        (skipped.length ? ` (compensations that never ran: ${skipped.join(", ")})` : "");
      this.dropRunning(exec);
      if (cancelled) {
        await this.storage.lifecycle.finishCancelled(fence, row.cancelReason, exec.drainLocal(), note);
        this.wakeups.publish([{ kind: "finished", key: exec.id }]);
        this.cfg.emit("actor:cancelled", { actorId: exec.id, reason: row.cancelReason });
        this.kick();
        return;
      }
      const base = error ?? row.error ?? { name: "Error", message: "actor failed" };
      const recorded = note ? { ...base, message: base.message + note } : base;
      await this.finishWith(exec, { status: "failed", error: recorded });
    } catch (err) {
      this.dropRunning(exec);
      this.cfg.log("warn", "compensation interrupted (lease lost?); another worker resumes it", {
        actorId: exec.id,
        error: String(err),
      });
    }
  }

  private async finishFailed(exec: Execution, err: unknown): Promise<void> {
    await this.finishWith(exec, { status: "failed", error: recordError(err) });
  }

  private async finishWith(
    exec: Execution,
    outcome:
      { status: "completed"; output: Buffer } | { status: "failed"; error: ReturnType<typeof recordError> },
  ): Promise<void> {
    this.dropRunning(exec);
    try {
      await this.storage.actors.finish(exec.fence, outcome, exec.drainLocal());
    } catch (err) {
      // Not recorded: the actor is replayed after its lease (its journal has everything before the end).
      this.dbFailed(err, "finishing an actor", "could not record the end of an actor (lease lost?)", {
        actorId: exec.id,
      });
      return;
    }
    this.wakeups.publish([{ kind: "finished", key: exec.id }]);
    this.stats[outcome.status]++;
    this.cfg.emit(outcome.status === "completed" ? "actor:completed" : "actor:failed", {
      actorId: exec.id,
      ...(outcome.status === "failed" ? { error: outcome.error } : {}),
    });
    this.slotFreed();
  }

  // ---- timers and leases -------------------------------------------------------------

  private armLocalTimer(actorId: string, seq: number, until: Date): void {
    const delay = until.getTime() - Date.now();
    if (delay > LOCAL_TIMER_WINDOW_MS) return;
    this.localTimers.get(actorId)?.clear();
    const t = startTimeout(
      () => {
        this.localTimers.delete(actorId);
        void this.fireLocal(actorId, seq);
      },
      Math.max(0, delay),
    );
    t.unref();
    this.localTimers.set(actorId, t);
  }

  private async fireLocal(actorId: string, seq: number): Promise<void> {
    if (this.stopping) return;
    try {
      if (await this.storage.timers.fire(actorId, seq)) {
        this.wakeups.publish([{ kind: "actor", key: actorId }]);
        await this.claimOne(actorId);
      } else {
        // Not fired: completed by someone else, or this timer was armed for an earlier wait at
        // the same position whose successor is due later: follow that one. (A database clock
        // behind ours is left to the leader's poll rather than retried in a loop.)
        const due = await this.storage.timers.dueAt(actorId, seq);
        if (due && due.getTime() > Date.now()) this.armLocalTimer(actorId, seq, due);
      }
    } catch (err) {
      this.dbFailed(err, "timer", "firing a timer failed; the leader will retry", { actorId });
    }
  }

  private heartbeating = false;

  private async heartbeat(): Promise<void> {
    if (this.heartbeating) return; // never pile refreshes up behind a slow one
    this.heartbeating = true;
    try {
      const held = [...this.running.values()].map((e) => e.fence);
      await this.storage.actors.refreshLeases(this.cfg.id, this.leaseMs, held);
      await this.storage.locks.heartbeat(this.cfg.id);
      // Not gated by the backoff: at lease/3 it is the probe that notices the database is back.
      this.outage.succeeded();
      // Cancel requests whose wakeup was lost (Redis down) are found here.
      if (this.running.size > 0) {
        for (const id of await this.storage.lifecycle.cancelRequestsFor(this.cfg.id))
          this.running.get(id)?.requestCancel();
      }
    } catch (err) {
      this.dbFailed(err, "heartbeat", "lease refresh failed");
    } finally {
      this.heartbeating = false;
    }
  }
}
