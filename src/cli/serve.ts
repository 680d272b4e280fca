/**
 * `troupe serve`: the HTTP front door (and, with --outbox-url, the outbox relay) for a
 * started Troupe, until SIGINT/SIGTERM; then a graceful stop.
 */
import { ValidationError } from "../api/errors.js";
import { redactCredentials } from "../options.js";
import { httpSink } from "../outbox/http-sink.js";
import type { OutboxRelayOptions } from "../outbox/relay.js";
import { createServer } from "../serve/server.js";
import type { Troupe } from "../troupe.js";
import { text, type Command } from "./command.js";
import { stderrLogger, untilSignal, type Output } from "./output.js";

export interface ServeFlags {
  port?: string | undefined;
  host?: string | undefined;
  token?: string | undefined;
  "outbox-url"?: string | undefined;
  "outbox-mode"?: string | undefined;
  "max-body"?: string | undefined;
}

export interface ServeControl {
  /** Resolves with a name to print when the server should stop (default: at SIGINT or SIGTERM). */
  until?: Promise<string>;
  /** Relay settings the command line does not offer (tests use a long poll interval). */
  relay?: Omit<OutboxRelayOptions, "sink" | "logger">;
}

function int(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError(`--${what} must be a non-negative integer, got ${v}`);
  return n;
}

/** Serves until `control.until` (or a signal) resolves; returns the exit code. */
export async function runServe(
  troupe: Troupe,
  flags: ServeFlags,
  out: Output,
  control: ServeControl = {},
): Promise<number> {
  const mode = flags["outbox-mode"] ?? "binary";
  if (mode !== "binary" && mode !== "structured")
    throw new ValidationError(`--outbox-mode must be binary or structured, got ${mode}`);
  // The relay runs on the Troupe's own outbox, so an emit in this process wakes it at once
  // (a store of its own would hear of events only by polling).
  const relay = flags["outbox-url"]
    ? troupe.createOutboxRelay({
        ...control.relay,
        sink: httpSink({ url: flags["outbox-url"], mode }),
        logger: stderrLogger("outbox", { debug: false }),
      })
    : undefined;
  const port = int(flags.port ?? process.env.PORT, "port") ?? 8080;
  const maxBodyBytes = int(flags["max-body"], "max-body");
  const token = flags.token ?? process.env.TROUPE_SERVE_TOKEN;
  const server = createServer({
    troupe,
    port,
    host: flags.host ?? "127.0.0.1",
    ...(relay ? { outboxRelay: relay } : {}),
    ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
    ...(token ? { token } : {}),
    logger: stderrLogger("serve"),
  });
  const stop = control.until ?? untilSignal();
  const addr = await server.start();
  out.line(
    `troupe serve listening on ${addr.url}${relay ? ` (outbox → ${redactCredentials(String(flags["outbox-url"]))}, ${mode} mode)` : ""}`,
  );
  const why = await stop;
  out.line(`${why}: stopping`);
  await server.stop();
  return 0;
}

export const serve: Command = {
  name: "serve",
  help: `  serve [--port N] [--host H] [--token T] [--outbox-url URL [--outbox-mode binary|structured]]
                                   HTTP: POST /events (CloudEvents in), GET /healthz, GET /readyz;
                                   with --outbox-url, relays the outbox to that URL`,
  options: {
    port: { type: "string" },
    host: { type: "string" },
    token: { type: "string" },
    "outbox-url": { type: "string" },
    "outbox-mode": { type: "string" },
    "max-body": { type: "string" },
  },
  open: { migrate: true },
  prepare(values) {
    const flags: ServeFlags = {};
    for (const flag of ["port", "host", "token", "outbox-url", "outbox-mode", "max-body"] as const)
      flags[flag] = text(values, flag);
    return (troupe, out) => runServe(troupe, flags, out);
  },
};
