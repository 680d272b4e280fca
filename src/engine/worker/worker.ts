import { hostname } from "node:os";
import type { ActorDefinition } from "../../actor.js";
import type { ContextPropagation } from "../../context-propagation.js";
import { UnknownActorError } from "../../api/errors.js";
import type { ActorRow, JournalEntry } from "../../storage/rows.js";
import type { Storage } from "../../storage/storage.js";
import { delay, startInterval, type Timer } from "../../timers.js";
import type { Wakeup, Wakeups } from "../../wakeups/wakeups.js";
import { Execution, type ExecutionDeps } from "../execution/execution.js";
import { Leader } from "../leader.js";
import { DatabaseOutage } from "../outage.js";
import { Claims } from "./claims.js";
import { Delivery } from "./delivery.js";
import { Endings } from "./endings.js";
import { Leases } from "./leases.js";
import { LocalTimers } from "./local-timers.js";
import { ParkedExecutions } from "./parked-executions.js";
import { Slots } from "./slots.js";

export interface WorkerConfig {
  id: string;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  maxPayloadBytes: number;
  /** Parked executions kept in memory for resume without replay. */
  maxParked: number;
  shutdownMs: number;
  /** Read messages older than this are deleted by the leader. */
  messageRetentionMs: number;
  actorRetentionMs: number | undefined;
  log: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  /** Test hook (src/internal/debug-points.ts). */
  debugPoint: (name: string, info: Record<string, unknown>) => Promise<void>;
  propagation: ContextPropagation;
  emit: (event: string, payload: Record<string, unknown>) => void;
}

/**
 * A worker claims runnable actors (by wakeup and by polling), runs them under a lease it
 * keeps refreshing, and keeps executions parked at a wait in memory for cheap resume.
 * This class wires its parts (slots.ts, claims.ts, delivery.ts, endings.ts, leases.ts,
 * local-timers.ts, parked-executions.ts, the leader) and runs each claimed actor's
 * activations.
 */
export class Worker {
  private readonly stopper = new AbortController();
  private readonly outage: DatabaseOutage;
  private readonly leader: Leader;
  private readonly slots: Slots;
  private readonly parked: ParkedExecutions;
  private readonly claims: Claims;
  private readonly delivery: Delivery;
  private readonly endings: Endings;
  private readonly leases: Leases;
  private readonly localTimers: LocalTimers;
  /** What every execution of this worker runs on. */
  private readonly executionDeps: ExecutionDeps;
  private pollTimer: Timer | undefined;
  private polling = false;
  /** Claimed actors being run (started, resumed, ending): stop() waits for them. */
  private readonly launched = new Set<Promise<void>>();
  /** Counters for operators (and tests): how executions were (re)started. */
  readonly stats = { replays: 0, resumes: 0, deliveries: 0, completed: 0, failed: 0 };

  constructor(
    private readonly storage: Storage,
    private readonly wakeups: Wakeups,
    private readonly actors: ReadonlyMap<string, ActorDefinition>,
    private readonly cfg: WorkerConfig,
  ) {
    const stopping = this.stopper.signal;
    const { id: workerId, leaseMs } = cfg;
    const types = () => [...actors.keys()];
    const dbFailed = this.dbFailed.bind(this);
    this.outage = new DatabaseOutage(cfg.log);
    this.leader = new Leader(storage, wakeups, {
      outage: this.outage,
      workerId,
      leaseMs,
      pollMs: cfg.pollMs,
      messageRetentionMs: cfg.messageRetentionMs,
      actorRetentionMs: cfg.actorRetentionMs,
      log: cfg.log,
    });
    // What a freed slot triggers: the parts below exist by the time a slot frees.
    const slots = new Slots(cfg.concurrency, stopping, {
      claim: () => this.claims.kick(),
      delivering: () => this.delivery.delivering,
      deliverPending: () => this.delivery.deliverPending(),
    });
    this.slots = slots;
    this.parked = new ParkedExecutions(cfg.maxParked);
    const launch = (row: ActorRow, entry?: JournalEntry) => this.launch(row, entry);
    // What most parts share; each takes the subset its Deps interface names.
    const common = {
      storage,
      wakeups,
      slots,
      outage: this.outage,
      workerId,
      leaseMs,
      stopping,
      types,
      dbFailed,
    };
    this.claims = new Claims({ ...common, launch });
    this.delivery = new Delivery({
      ...common,
      claims: this.claims,
      stats: this.stats,
      launch,
      debugPoint: cfg.debugPoint,
    });
    this.localTimers = new LocalTimers({ ...common, claimOne: (id) => this.claims.claimOne(id) });
    this.endings = new Endings({
      ...common,
      parked: this.parked,
      localTimers: this.localTimers,
      maxPayloadBytes: cfg.maxPayloadBytes,
      stats: this.stats,
      claim: () => this.claims.kick(),
      log: cfg.log,
      emit: cfg.emit,
    });
    this.leases = new Leases({ ...common, parked: this.parked });
    this.executionDeps = {
      storage,
      leaseMs,
      maxPayloadBytes: cfg.maxPayloadBytes,
      propagation: cfg.propagation,
      wake: (w) => wakeups.publish(w),
      debugPoint: cfg.debugPoint,
      stopping,
    };
  }

  get id(): string {
    return this.cfg.id;
  }

  private get stopping(): boolean {
    return this.stopper.signal.aborted;
  }

  snapshot() {
    const s = this.slots.snapshot();
    return {
      ...this.stats,
      running: s.running,
      parked: this.parked.size,
      // capacity bookkeeping: free = concurrency − running − starting − reserved
      starting: s.starting,
      reserved: s.reserved,
      free: s.free,
      leader: this.leader.isLeader,
    };
  }

  async start(): Promise<void> {
    await this.register();
    this.wakeups.onWakeup((w) => this.onWakeup(w));
    // Hints were lost while disconnected: claim, and deliver whatever waits with messages pending.
    this.wakeups.onReconnect(() => void this.poll());
    // The database is back: wakeups sent while it was away were lost (and a long outage may
    // have had us pruned from the worker registry): register again, claim and sweep.
    this.outage.onRecovered(() => {
      if (this.stopping) return;
      void this.registerAgain();
      void this.poll();
      void this.leader.tick();
    });
    this.leases.start();
    // Polling fallback: claim runnable actors, and deliver to waiting actors of our types
    // whose wakeup was lost (every worker sweeps for its own types: pools may be split).
    this.pollTimer = startInterval(() => void this.poll(), this.cfg.pollMs);
    this.leader.start();
    this.claims.kick();
  }

  private register(): Promise<void> {
    return this.storage.workers.register({
      id: this.cfg.id,
      hostname: hostname(),
      pid: process.pid,
      concurrency: this.cfg.concurrency,
    });
  }

  private async registerAgain(): Promise<void> {
    try {
      await this.register();
    } catch (err) {
      this.dbFailed(err, "registering the worker again", "could not register the worker again");
    }
  }

  /** A round failed: a database outage goes to the backoff (logged once); anything else is logged as `msg`. */
  private dbFailed(err: unknown, during: string, msg: string, fields: Record<string, unknown> = {}): void {
    if (!this.outage.failed(err, during)) this.cfg.log("warn", msg, { ...fields, error: String(err) });
  }

  /** Graceful: stop claiming, let running activations finish (up to shutdownMs), hand back the rest. */
  async stop(): Promise<void> {
    this.stopper.abort();
    this.pollTimer?.clear();
    this.localTimers.clear();
    await this.leader.stop();
    await Promise.allSettled([this.claims.loop, this.delivery.loop]);
    const deadline = delay(this.cfg.shutdownMs);
    await Promise.race([Promise.allSettled([...this.launched]), deadline]);
    for (const exec of this.slots.executions()) {
      await this.storage.actors.release(exec.fence).catch(() => {});
    }
    this.slots.clear();
    this.parked.clear();
    this.leases.stop();
    // Our parked executions are gone: deliveries need not wait for this worker.
    await this.storage.actors.forgetParked(this.cfg.id).catch(() => {});
    await this.storage.workers.remove(this.cfg.id).catch(() => {});
  }

  private onWakeup(w: Wakeup): void {
    if (this.stopping) return;
    if (w.kind === "actor") void this.claims.claimOne(w.key);
    else if (w.kind === "cancel") void this.leases.onCancelHint(w.key);
    else if (w.kind === "channel") this.delivery.onSource(w.key);
  }

  /**
   * One polling round: claim runnable actors, then sweep. In sequence, not side by side: a
   * claim in flight holds every free slot (reserved) until its query returns, so a sweep
   * started next to it would always find the worker full and never run.
   */
  private async poll(): Promise<void> {
    if (this.polling || this.stopping || this.outage.backingOff) return;
    this.polling = true;
    try {
      this.claims.kick();
      await this.claims.loop;
      await this.delivery.sweep();
    } finally {
      this.polling = false;
    }
  }

  /** Runs a claimed actor: resumes its parked execution in memory when still valid, else replays. */
  private launch(row: ActorRow, entry?: JournalEntry): void {
    this.slots.startFor(row.id);
    const p = this.activate(row, entry)
      .catch((err) => {
        // The database went away while starting or ending it: it is replayed after its lease.
        if (!this.outage.failed(err, "running an actor"))
          this.cfg.log("error", "actor execution crashed", { actorId: row.id, error: String(err) });
      })
      .finally(() => {
        this.slots.started(row.id);
        this.launched.delete(p);
      });
    this.launched.add(p);
  }

  /** Runs the actor's activations until it parks, ends or is handed back. */
  private async activate(row: ActorRow, delivered?: JournalEntry): Promise<void> {
    let exec = await this.resumeOrReplay(row, delivered);
    while (exec) {
      this.slots.run(exec);
      const next = await this.endings.settle(exec, await exec.run());
      // Continue-as-new: the next generation runs here, under the same lease.
      exec = next && new Execution(this.executionDeps, exec.def, next, this.cfg.id);
    }
  }

  /** The parked execution resumed with the entry that completed its wait, else a new one (a replay). */
  private async resumeOrReplay(row: ActorRow, delivered?: JournalEntry): Promise<Execution | undefined> {
    // We re-claimed an actor we still run: our lease had expired (we stalled), so that
    // execution is fenced off already. Replace it under the new lease.
    this.slots.execution(row.id)?.supersede();
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
      return undefined;
    }
    let resumed: Execution | undefined;
    const parked = this.parked.take(row.id);
    if (parked && row.status === "running" && !row.cancelRequestedAt) {
      const at = parked.parkedAt;
      const entry = !at
        ? null
        : delivered?.seq === at.seq
          ? delivered
          : await this.storage.journal.entry(row.id, at.seq);
      if (entry && parked.resume(row, entry)) resumed = parked;
    }
    this.parked.delete(row.id); // the execution it superseded may have parked during the read
    if (resumed) this.stats.resumes++;
    else this.stats.replays++;
    return resumed ?? new Execution(this.executionDeps, def, row, this.cfg.id);
  }
}
