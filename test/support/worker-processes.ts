/**
 * Worker child processes for the multi-process tests (fencing, multi-worker, invariants,
 * db-faults, lifecycle-ops) and the chaos runner, written once: starts a script with
 * `node --import tsx`, parses the JSON lines it prints on stdout (one event each), sends it
 * JSON-line commands on stdin if asked to, lets the test wait for a line matching a condition
 * (failing at once if the process exits or reports itself failed), signals and kills it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { REPO } from "./run-node.js";

/** Where a relative script name is looked up: the fixtures next to the tests. */
const FIXTURES = new URL("../fixtures/", import.meta.url);

/** One line a worker printed: `{ event, worker, ... }` (a line that is not JSON: event "text"). */
export type WorkerLine = { event: string; worker?: string } & Record<string, any>;

export type LineMatch = string | ((l: WorkerLine) => boolean);

export interface WorkerProcessOptions {
  /** Open stdin for send() (JSON-line commands); otherwise the child's stdin is closed. */
  commands?: boolean;
  /** An event by which the worker reports that it failed: pending and later waits reject on it. */
  fatalEvent?: string;
  /** Called for every line, e.g. to log some of them as they come. */
  onLine?: (line: WorkerLine, text: string) => void;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Waiter {
  match: (l: WorkerLine) => boolean;
  resolve: (l: WorkerLine) => void;
  reject: (e: Error) => void;
}

const matcher = (m: LineMatch) => (typeof m === "string" ? (l: WorkerLine) => l.event === m : m);

export class WorkerProcess {
  readonly proc: ChildProcess;
  readonly lines: WorkerLine[] = [];
  private stderr = "";
  private readonly waiters = new Set<Waiter>();
  private readonly isFatal: (l: WorkerLine) => boolean;
  private exitInfo: Exit | undefined;
  readonly exited: Promise<Exit>;

  /** `script`: a path relative to test/fixtures/, or absolute. */
  constructor(
    readonly name: string,
    script: string,
    env: Record<string, string | undefined>,
    options: WorkerProcessOptions = {},
  ) {
    const fatal = options.fatalEvent;
    this.isFatal = (l) => fatal !== undefined && l.event === fatal;
    this.proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL(script, FIXTURES))], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: [options.commands ? "pipe" : "ignore", "pipe", "pipe"],
    });
    this.proc.stdin?.on("error", () => {}); // writing to a killed worker
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        this.rejectAll(new Error(`${this.name} exited (code ${code}, signal ${signal}) ${this.describe()}`));
        resolve(this.exitInfo);
      });
    });
    createInterface({ input: this.proc.stdout! }).on("line", (text) => {
      let line: WorkerLine;
      try {
        line = JSON.parse(text) as WorkerLine;
      } catch {
        line = { event: "text", text };
      }
      this.lines.push(line);
      options.onLine?.(line, text);
      if (this.isFatal(line)) {
        this.rejectAll(new Error(`${this.name} failed: ${JSON.stringify(line)}`));
        return;
      }
      for (const w of [...this.waiters]) {
        if (w.match(line)) {
          this.waiters.delete(w);
          w.resolve(line);
        }
      }
    });
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /**
   * The first line (already printed or still to come) matching `match` (an event name or a
   * predicate). Rejects on timeout, when the process exits, or on its fatal event.
   */
  waitFor(match: LineMatch, what = String(match), timeoutMs = 30_000): Promise<WorkerLine> {
    const test = matcher(match);
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    const failed = this.lines.find(this.isFatal);
    if (failed) return Promise.reject(new Error(`${this.name} failed: ${JSON.stringify(failed)}`));
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running: ${this.describe()}`));
    return new Promise<WorkerLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${this.name}: ${what} ${this.describe()}`));
      }, timeoutMs);
      const waiter: Waiter = {
        match: test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** A JSON-line command on stdin (the process must have been started with `commands`). */
  send(cmd: Record<string, unknown>): void {
    if (!this.proc.stdin) throw new Error(`${this.name} was started without commands on stdin`);
    this.proc.stdin.write(JSON.stringify(cmd) + "\n");
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(sig);
  }

  /** SIGKILL (continuing a stopped process first is not needed: SIGKILL ends it anyway). */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** Last lines and stderr, for failure messages. */
  describe(): string {
    const tail = this.lines
      .slice(-8)
      .map((l) => JSON.stringify(l))
      .join("\n  ");
    return `\n [${this.name} stdout tail]\n  ${tail}\n [${this.name} stderr tail]\n${this.stderr.slice(-1500)}`;
  }

  private rejectAll(error: Error): void {
    for (const w of this.waiters) w.reject(error);
    this.waiters.clear();
  }
}

/** The worker processes a test file started, so that its `after` kills whatever is left. */
export class WorkerProcesses {
  readonly all: WorkerProcess[] = [];

  start(
    name: string,
    script: string,
    env: Record<string, string | undefined>,
    options?: WorkerProcessOptions,
  ): WorkerProcess {
    const p = new WorkerProcess(name, script, env, options);
    this.all.push(p);
    return p;
  }

  live(): WorkerProcess[] {
    return this.all.filter((p) => p.alive);
  }

  /** SIGKILL to every one still running; their connections close and Postgres rolls back their transactions. */
  async killAll(): Promise<void> {
    await Promise.all(this.all.map((p) => p.kill()));
  }
}
