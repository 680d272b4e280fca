/**
 * The round's processes: 3 workers (chaos/worker.ts) and the client (chaos/client.ts), as
 * children with JSON-line output (test/support/worker-processes.ts). Every exit is recorded; an
 * exit the runner did not cause (it only ever kills with SIGKILL, as a fault or at the end)
 * is a crash: reported, and the process is replaced so the round can go on.
 */
import { fileURLToPath } from "node:url";
import { WorkerProcess } from "../test/support/worker-processes.js";

const WORKER_SCRIPT = fileURLToPath(new URL("./worker.ts", import.meta.url));
const CLIENT_SCRIPT = fileURLToPath(new URL("./client.ts", import.meta.url));

export interface Crash {
  process: string;
  code: number | null;
  signal: string | null;
  /** The error it died of (the first error line of its stderr). */
  cause: string;
  /** The last lines it printed and its stderr, and the beginning of its stderr. */
  tail: string;
  stderrHead: string;
}

/** "error: terminating connection due to administrator command" and the like, from a child's stderr. */
function causeOf(stderr: string): string {
  const line = stderr
    .split("\n")
    .map((l) => l.trim())
    .find((l) => /^\w*(Error|error)\b.*:/.test(l) && !l.startsWith("Emitted"));
  const unhandled = stderr.includes("Unhandled 'error' event") ? " (unhandled 'error' event)" : "";
  return (line ?? "unknown (see --verbose)") + unhandled;
}

export interface FleetEnv {
  workerDb: string;
  sideDb: string;
  clientDb: string;
  redis: string;
  lease: string;
  seed: number;
  round: number;
  short: boolean;
}

export class Fleet {
  readonly workers = new Map<string, WorkerProcess>();
  client: WorkerProcess | undefined;
  readonly crashes: Crash[] = [];
  private readonly expected = new Set<WorkerProcess>();
  private readonly everyChild = new Set<WorkerProcess>();
  private closing = false;
  private restarts = 0;
  /** Sends the client acknowledged, across its restarts. */
  acked = -1;
  clientDone = false;

  constructor(private readonly env: FleetEnv) {}

  private watch(c: WorkerProcess, onCrash: () => void): void {
    // The head of stderr: where a crash says what it died of (WorkerProcess keeps only the tail).
    let head = "";
    c.proc.stderr?.on("data", (chunk: string | Buffer) => {
      if (head.length < 4000) head += String(chunk);
    });
    void c.exited.then(({ code, signal }) => {
      if (this.expected.has(c) || this.closing) return;
      const finished = c.lines.some((l) => l.event === "done");
      if (finished && code === 0) return; // the client, after its work
      const tail = c.describe().slice(-2500);
      this.crashes.push({ process: c.name, code, signal, cause: causeOf(head), tail, stderrHead: head });
      onCrash();
    });
  }

  startWorker(id: string): WorkerProcess {
    const c = new WorkerProcess(id, WORKER_SCRIPT, {
      CHAOS_DB: this.env.workerDb,
      CHAOS_SIDE_DB: this.env.sideDb,
      CHAOS_REDIS: this.env.redis,
      CHAOS_WORKER: id,
      CHAOS_LEASE: this.env.lease,
    });
    this.workers.set(id, c);
    this.everyChild.add(c);
    this.watch(c, () => {
      this.workers.delete(id);
      if (!this.closing) this.startWorker(`${id.split("-")[0]}-c${++this.restarts}`);
    });
    return c;
  }

  startClient(): WorkerProcess {
    const c = new WorkerProcess(this.client ? `client-c${++this.restarts}` : "client", CLIENT_SCRIPT, {
      CHAOS_DB: this.env.clientDb,
      CHAOS_REDIS: this.env.redis,
      CHAOS_SEED: String(this.env.seed),
      CHAOS_ROUND: String(this.env.round),
      CHAOS_SHORT: this.env.short ? "1" : "0",
      CHAOS_RESUME: String(this.acked + 1),
    });
    this.client = c;
    this.everyChild.add(c);
    void c
      .waitFor((l) => l.event === "done", "client done", 3_600_000)
      .then(
        () => (this.clientDone = true),
        () => {},
      );
    // Keep the acknowledged position current (for a restart after a crash).
    const poll = setInterval(() => {
      for (const l of c.lines)
        if (l.event === "ack" && typeof l.n === "number") this.acked = Math.max(this.acked, l.n);
      if (!c.alive) clearInterval(poll);
    }, 100);
    this.watch(c, () => {
      for (const l of c.lines)
        if (l.event === "ack" && typeof l.n === "number") this.acked = Math.max(this.acked, l.n);
      if (!this.closing) this.startClient();
    });
    return c;
  }

  live(): WorkerProcess[] {
    return [...this.workers.values()].filter((c) => c.alive);
  }

  /** kill -9 of a worker (a fault): expected, then a fresh process under a new id after `delayMs`. */
  async kill9(pick: number, delayMs: number): Promise<string | null> {
    const live = this.live();
    const victim = live[Math.floor(pick * live.length)];
    if (!victim) return null;
    this.expected.add(victim);
    await victim.kill();
    this.workers.delete(victim.name);
    await new Promise((r) => setTimeout(r, delayMs));
    if (!this.closing) this.startWorker(`${victim.name.split("-")[0]}-k${++this.restarts}`);
    return victim.name;
  }

  /** SIGSTOP a worker for `ms` (past its lease), then SIGCONT. */
  async pause(pick: number, ms: number): Promise<string | null> {
    const live = this.live();
    const victim = live[Math.floor(pick * live.length)];
    if (!victim) return null;
    victim.signal("SIGSTOP");
    await new Promise((r) => setTimeout(r, ms));
    victim.signal("SIGCONT");
    return victim.name;
  }

  /** Every line any process printed with this event (e.g. "log", "retry", "error"). */
  lines(event: string): { process: string; line: Record<string, unknown> }[] {
    return [...this.everyChild].flatMap((c) =>
      c.lines.filter((l) => l.event === event).map((line) => ({ process: c.name, line })),
    );
  }

  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.workers.values(), ...(this.client ? [this.client] : [])];
    await Promise.all(all.map((c) => c.kill()));
  }
}
