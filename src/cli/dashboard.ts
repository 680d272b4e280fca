/** `troupe dashboard`: the read-only web dashboard for a client-only Troupe, until SIGINT/SIGTERM. */
import { startDashboard, DEFAULT_DASHBOARD_PORT, type DashboardOptions } from "../dashboard/server.js";
import { toMillis } from "../duration.js";
import { ValidationError } from "../api/errors.js";
import type { Troupe } from "../troupe.js";
import { text, type Command } from "./command.js";
import { stderrLogger, untilSignal, type Output } from "./output.js";

export interface DashboardFlags {
  port?: string | undefined;
  host?: string | undefined;
  token?: string | undefined;
  refresh?: string | undefined;
}

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

/** Serves the dashboard until `until` (default: SIGINT or SIGTERM) resolves; returns the exit code. */
export async function runDashboard(
  troupe: Troupe,
  opts: DashboardOptions,
  out: Output,
  until: Promise<string> = untilSignal(),
): Promise<number> {
  const dashboard = await startDashboard(troupe, { ...opts, logger: stderrLogger("dashboard") });
  out.line(
    `troupe dashboard on ${dashboard.url}${opts.token ? " (needs the token: open it with ?token=<token>)" : ""}`,
  );
  const why = await until;
  out.line(`${why}: stopping`);
  await dashboard.close();
  return 0;
}

export const dashboard: Command = {
  name: "dashboard",
  help: `  dashboard [--port N] [--host H] [--token T] [--refresh DURATION]
                                   web dashboard (read-only) on http://127.0.0.1:${DEFAULT_DASHBOARD_PORT}/
                                   (--port 0: a free port); --token (or $TROUPE_DASHBOARD_TOKEN):
                                   requests need Authorization: Bearer T or ?token=T;
                                   --refresh: how often open pages update (default 2s)`,
  // --port, --host and --token are the same options as serve's (one definition each on the
  // command line); --refresh is the dashboard's own.
  options: {
    port: { type: "string" },
    host: { type: "string" },
    token: { type: "string" },
    refresh: { type: "string" },
  },
  prepare(values, args) {
    const flags: DashboardFlags = {};
    for (const flag of ["port", "host", "token", "refresh"] as const) flags[flag] = text(values, flag);
    const opts = dashboardOptions(flags, args);
    return (troupe, out) => runDashboard(troupe, opts, out);
  },
};
