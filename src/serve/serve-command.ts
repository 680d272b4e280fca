import { redactCredentials } from "../options.js";
import { ValidationError } from "../errors.js";
import { httpSink } from "../outbox/http-sink.js";
import { OutboxStore } from "../outbox/outbox-store.js";
import { OutboxRelay } from "../outbox/relay.js";
import { StoreContext } from "../storage/context.js";
import type { Troupe } from "../troupe.js";
import { createServer } from "./server.js";

export interface ServeFlags {
  port?: string | undefined;
  host?: string | undefined;
  token?: string | undefined;
  "outbox-url"?: string | undefined;
  "outbox-mode"?: string | undefined;
  "max-body"?: string | undefined;
}

export const SERVE_HELP = `  serve [--port N] [--host H] [--token T] [--outbox-url URL [--outbox-mode binary|structured]]
                                   HTTP: POST /events (CloudEvents in), GET /healthz, GET /readyz;
                                   with --outbox-url, relays the outbox to that URL`;

/** `parseArgs` options for the serve flags. */
export const SERVE_OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  token: { type: "string" },
  "outbox-url": { type: "string" },
  "outbox-mode": { type: "string" },
  "max-body": { type: "string" },
} as const;

function int(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError(`--${what} must be a non-negative integer, got ${v}`);
  return n;
}

/**
 * `troupe serve`: the HTTP front door (and, with --outbox-url, the outbox relay) for a
 * started Troupe, until SIGINT/SIGTERM; then a graceful stop. Returns the exit code.
 */
export async function serveCommand(
  troupe: Troupe,
  flags: ServeFlags,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<number> {
  const mode = flags["outbox-mode"] ?? "binary";
  if (mode !== "binary" && mode !== "structured")
    throw new ValidationError(`--outbox-mode must be binary or structured, got ${mode}`);
  const storage = troupe._storage;
  const relay = flags["outbox-url"]
    ? new OutboxRelay(new OutboxStore(new StoreContext(storage.db, storage.schema)), {
        sink: httpSink({ url: flags["outbox-url"], mode }),
        logger: (level, msg, fields) => {
          if (level !== "debug")
            process.stderr.write(`[troupe outbox] ${level}: ${msg} ${JSON.stringify(fields ?? {})}\n`);
        },
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
    logger: (level, msg, fields) =>
      process.stderr.write(`[troupe serve] ${level}: ${msg} ${JSON.stringify(fields ?? {})}\n`),
  });
  const signalled = new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  const addr = await server.start();
  out(
    `troupe serve listening on ${addr.url}${relay ? ` (outbox → ${redactCredentials(String(flags["outbox-url"]))}, ${mode} mode)` : ""}`,
  );
  const sig = await signalled;
  out(`${sig}: stopping`);
  await server.stop();
  return 0;
}
