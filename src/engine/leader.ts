import { LEADER_LOCK } from "../storage/leader-lock-store.js";
import type { Storage } from "../storage/storage.js";
import { advanceSchedules } from "./schedules.js";
import type { Wakeups } from "../wakeups/wakeups.js";
import type { DatabaseOutage } from "./outage.js";
import { startInterval, type Timer } from "../timers.js";

const RETENTION_EVERY_MS = 60_000;

export interface LeaderConfig {
  workerId: string;
  leaseMs: number;
  pollMs: number;
  messageRetentionMs: number;
  actorRetentionMs: number | undefined;
  log: (level: "debug" | "info" | "warn" | "error", msg: string, f?: Record<string, unknown>) => void;
  /** The worker's backoff while the database is away: ticks are skipped, failures reported. */
  outage?: DatabaseOutage;
}

/**
 * The leader: work that must run somewhere but only once — due timers, expired leases,
 * the delivery sweep's hints, schedules, retention. Every worker runs a Leader; the one
 * that holds the "leader" system lock (a lease, renewed each tick) does the work.
 */
export class Leader {
  private timer: Timer | undefined;
  private ticking = false;
  private leader = false;
  private stopped = false;

  private readonly workerId: string;
  private readonly pollMs: number;
  private lastRetention = 0;

  constructor(
    private readonly storage: Storage,
    private readonly wakeups: Wakeups,
    private readonly cfg: LeaderConfig,
  ) {
    this.workerId = cfg.workerId;
    this.pollMs = cfg.pollMs;
  }

  start(): void {
    this.timer = startInterval(() => void this.tick(), this.pollMs);
    void this.tick();
  }

  private log(level: "debug" | "info" | "warn" | "error", msg: string, f?: Record<string, unknown>): void {
    this.cfg.log(level, msg, f);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.clear();
    await this.current; // a tick in flight may be acquiring the lock: let it land, then release
    if (this.leader) await this.storage.leaderLock.release(LEADER_LOCK, this.workerId).catch(() => {});
    this.leader = false;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  private current: Promise<void> | undefined;

  tick(): Promise<void> {
    if (this.ticking || this.stopped || this.cfg.outage?.backingOff) return Promise.resolve();
    this.current = this.runTick();
    return this.current;
  }

  private async runTick(): Promise<void> {
    this.ticking = true;
    try {
      this.leader = await this.storage.leaderLock.tryAcquire(
        LEADER_LOCK,
        this.workerId,
        // A few poll intervals: a crashed leader is replaced quickly (it is not the actor lease).
        Math.max(this.pollMs * 3, 1000),
      );
      this.cfg.outage?.succeeded();
      if (!this.leader) return;
      await this.fireDueTimers();
      await this.announceExpiredLeases();
      await this.sweepPendingDeliveries();
      const started = await advanceSchedules(this.storage);
      this.wakeups.publish(started.map((key) => ({ kind: "actor" as const, key })));
      if (Date.now() - this.lastRetention > RETENTION_EVERY_MS) {
        this.lastRetention = Date.now();
        await this.applyRetention();
        await this.storage.workers.prune(Math.max(this.pollMs * 10, 60_000));
      }
    } catch (err) {
      if (!this.cfg.outage?.failed(err, "leader loop"))
        this.log("warn", "leader loop failed", { error: String(err) });
    } finally {
      this.ticking = false;
    }
  }

  private async fireDueTimers(): Promise<void> {
    for (;;) {
      const due = await this.storage.timers.due(500);
      const fired: string[] = [];
      for (const t of due) if (await this.storage.timers.fire(t.actorId, t.seq)) fired.push(t.actorId);
      this.wakeups.publish(fired.map((key) => ({ kind: "actor" as const, key })));
      if (due.length < 500 || this.stopped) return;
    }
  }

  /** Runnable again once a lease expires; tell the workers so they need not wait for a poll. */
  private async announceExpiredLeases(): Promise<void> {
    const ids = await this.storage.actors.expiredLeases(500);
    this.wakeups.publish(ids.map((key) => ({ kind: "actor" as const, key })));
  }

  /**
   * The safety net for lost wakeups (a crash after commit, Redis down, a locked actor at
   * delivery time, a worker that died with the execution parked): waiting subscribers with pending messages.
   */
  private async sweepPendingDeliveries(): Promise<void> {
    // Every worker sweeps for its own actor types; the leader also hints everyone (through
    // Redis) about sources whose subscribers it cannot run itself.
    const sources = await this.storage.delivery.pendingSources(1000, null);
    if (sources.length === 0) return;
    this.wakeups.publish(sources.map((key) => ({ kind: "channel" as const, key })));
  }

  private async applyRetention(): Promise<void> {
    let removed = 0;
    for (;;) {
      const n = await this.storage.messages.deleteRead(this.cfg.messageRetentionMs, 1000);
      removed += n;
      if (n < 1000 || this.stopped) break;
    }
    if (removed > 0) this.log("debug", "retention removed read messages", { removed });
    if (this.cfg.actorRetentionMs === undefined) return;
    let actors = 0;
    for (;;) {
      const n = await this.storage.actors.deleteFinished(this.cfg.actorRetentionMs, 1000);
      actors += n;
      if (n < 1000 || this.stopped) break;
    }
    if (actors > 0) this.log("debug", "retention removed finished actors", { actors });
  }
}
