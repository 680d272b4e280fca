import { isConnectionError } from "../storage/db-errors.js";

type Log = (level: "debug" | "info" | "warn" | "error", msg: string, f?: Record<string, unknown>) => void;

/** Capped exponential backoff with full jitter (from half the ceiling), so a fleet does not retry in lockstep. */
export function outageDelay(failures: number, capMs: number): number {
  const ceiling = Math.min(capMs, 100 * 2 ** Math.min(failures - 1, 16));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * A worker's view of whether the database is reachable. A loop that fails with a
 * connection error reports it here; until the backoff (capped, jittered) has passed, the
 * loops skip their rounds instead of hammering a server that is down, and the next round
 * after it probes. The first query that works ends the outage and runs the recovery
 * handlers (a full claim and delivery sweep: wakeups sent meanwhile were lost).
 */
export class DatabaseOutage {
  private failures = 0;
  private retryAt = 0;
  private since = 0;
  private readonly handlers: (() => void)[] = [];

  constructor(
    private readonly log: Log,
    private readonly capMs = 5000,
  ) {}

  /** True while backing off after a database failure: skip this round. */
  get backingOff(): boolean {
    return this.failures > 0 && Date.now() < this.retryAt;
  }

  get down(): boolean {
    return this.failures > 0;
  }

  /** Reports a failed round. True if the database was away (logged once per outage); false for other errors. */
  failed(err: unknown, during: string): boolean {
    if (!isConnectionError(err)) return false;
    this.failures++;
    const delay = outageDelay(this.failures, this.capMs);
    this.retryAt = Date.now() + delay;
    if (this.failures === 1) {
      this.since = Date.now();
      this.log("warn", "database unavailable; backing off and retrying until it is back", {
        during,
        error: String(err),
      });
    } else {
      this.log("debug", "database still unavailable", { during, failures: this.failures, retryInMs: delay });
    }
    return true;
  }

  /** Reports a query that worked: ends an outage (and runs the recovery handlers). */
  succeeded(): void {
    if (this.failures === 0) return;
    this.log("info", "database reachable again; resuming", {
      failures: this.failures,
      downForMs: Date.now() - this.since,
    });
    this.failures = 0;
    this.retryAt = 0;
    for (const h of this.handlers) h();
  }

  onRecovered(handler: () => void): void {
    this.handlers.push(handler);
  }
}
