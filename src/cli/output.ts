/** How commands talk back: results on stdout (text or --json), logs on stderr, signals to stop. */
import type { Logger } from "../options.js";

export interface Output {
  /** A command's result: `value` as JSON with --json, else the `human` text. */
  print(value: unknown, human: () => string): void;
  /** A line of progress on stdout (where a server listens, that it stops). */
  line(text: string): void;
}

/** The process's stdout, in text or (--json) JSON. */
export function stdout(json: boolean): Output {
  return {
    print: (value, human) => process.stdout.write((json ? JSON.stringify(value, null, 2) : human()) + "\n"),
    line: (text) => process.stdout.write(`${text}\n`),
  };
}

/** A logger writing `[troupe <what>] level: message {fields}` lines to stderr. */
export function stderrLogger(what: string, opts: { debug?: boolean } = {}): Logger {
  return (level, msg, fields) => {
    if (level === "debug" && opts.debug === false) return;
    process.stderr.write(`[troupe ${what}] ${level}: ${msg} ${JSON.stringify(fields ?? {})}\n`);
  };
}

/** Resolves with the signal's name at the first SIGINT or SIGTERM (a long-running command's cue to stop). */
export function untilSignal(): Promise<string> {
  return new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
}
