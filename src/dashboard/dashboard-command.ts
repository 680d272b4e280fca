import { toMillis } from "../duration.js";
import { ValidationError } from "../errors.js";
import type { Troupe } from "../troupe.js";
import { DEFAULT_DASHBOARD_PORT, startDashboard, type DashboardOptions } from "./server.js";

export interface DashboardFlags {
  port?: string | undefined;
  host?: string | undefined;
  token?: string | undefined;
  refresh?: string | undefined;
}

export const DASHBOARD_HELP = `  dashboard [--port N] [--host H] [--token T] [--refresh DURATION]
                                   web dashboard (read-only) on http://127.0.0.1:${DEFAULT_DASHBOARD_PORT}/
                                   (--port 0: a free port); --token (or $TROUPE_DASHBOARD_TOKEN):
                                   requests need Authorization: Bearer T or ?token=T;
                                   --refresh: how often open pages update (default 2s)`;

/**
 * `parseArgs` options of the dashboard. --port, --host and --token are the same options as
 * `serve`'s (one definition each on the command line); --refresh is the dashboard's own.
 */
export const DASHBOARD_OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  token: { type: "string" },
  refresh: { type: "string" },
} as const;

/** Checks the flags (before any database is opened): a bad value is a ValidationError. */
export function dashboardOptions(
  flags: DashboardFlags,
  positionals: readonly string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): Required<Pick<DashboardOptions, "port" | "host">> & DashboardOptions {
  if (positionals.length > 0)
    throw new ValidationError(`dashboard takes no arguments, got "${positionals.join(" ")}"`);
  let port = DEFAULT_DASHBOARD_PORT;
  if (flags.port !== undefined) {
    if (!/^\d{1,5}$/.test(flags.port) || Number(flags.port) > 65535)
      throw new ValidationError(`--port must be an integer from 0 to 65535, got "${flags.port}"`);
    port = Number(flags.port);
  }
  const host = flags.host ?? "127.0.0.1";
  if (host.trim().length === 0 || /\s/.test(host))
    throw new ValidationError(`--host must be a host name or address, got "${host}"`);
  const token = flags.token ?? env.TROUPE_DASHBOARD_TOKEN;
  if (token !== undefined && token.length === 0) throw new ValidationError("--token must not be empty");
  const opts: Required<Pick<DashboardOptions, "port" | "host">> & DashboardOptions = { port, host };
  if (token !== undefined) opts.token = token;
  if (flags.refresh !== undefined) {
    const ms = toMillis(flags.refresh, "--refresh");
    if (ms < 100) throw new ValidationError(`--refresh must be at least 100ms, got "${flags.refresh}"`);
    opts.refreshInterval = ms;
  }
  return opts;
}

/**
 * `troupe dashboard`: serves the dashboard for a started (client-only) Troupe until
 * SIGINT/SIGTERM, then closes it. Returns the exit code.
 */
export async function dashboardCommand(
  troupe: Troupe,
  opts: DashboardOptions,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<number> {
  const signalled = new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  const dashboard = await startDashboard(troupe, {
    ...opts,
    logger: (level, msg, fields) =>
      process.stderr.write(`[troupe dashboard] ${level}: ${msg} ${JSON.stringify(fields ?? {})}\n`),
  });
  out(
    `troupe dashboard on ${dashboard.url}${opts.token ? " (needs the token: open it with ?token=<token>)" : ""}`,
  );
  const sig = await signalled;
  out(`${sig}: stopping`);
  await dashboard.close();
  return 0;
}
