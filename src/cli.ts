#!/usr/bin/env node
/**
 * `troupe` — inspect and operate a troupe database from a shell.
 * Connection: --database (or TROUPE_DATABASE_URL / DATABASE_URL), --schema, --redis (or REDIS_URL).
 */
import { parseArgs } from "node:util";
import { toMillis } from "./duration.js";
import { NotFoundError, ValidationError } from "./errors.js";
import { Troupe, type HistoryEntry } from "./troupe.js";
import type { ActorStatus } from "./storage/rows.js";
import { OUTBOX_HELP, OUTBOX_OPTIONS, outboxCommand } from "./outbox/outbox-command.js";
import { SERVE_HELP, SERVE_OPTIONS, serveCommand } from "./serve/serve-command.js";
import {
  DASHBOARD_HELP,
  DASHBOARD_OPTIONS,
  dashboardCommand,
  dashboardOptions,
} from "./dashboard/dashboard-command.js";

const HELP = `troupe <command> [options]

Commands:
  migrate                          apply pending migrations
  list [--status S[,S…]] [--actor A] [--id-contains X] [--input PATH=JSON]…
       [--started-after DATE] [--started-before DATE] [--limit N] [--cursor C]
                                   actors, newest first; --input compares a JSON path of
                                   the input with a JSON value (repeatable, all must match):
                                   --input customer.id='"c-1"' --input items.0.qty=2
  show <actorId>                   an actor and its history
  send <actorId> <channel> <json>  a direct message
  publish <channel> <json>         a broadcast/competing message
  cancel <actorId> [reason]        cancel an actor (compensations run)
  members <group>                  members of a process group
  groups                           every group with its size
  stats [--actor A] [--since DATE|DURATION]
                                   actors by status; --since 2024-05-01T00:00:00Z or 1h
${SERVE_HELP}
${DASHBOARD_HELP}
${OUTBOX_HELP}

Options:
  --database URL|DIR   postgres://… or a PGlite directory (default: $TROUPE_DATABASE_URL, $DATABASE_URL, ./.troupe)
  --schema NAME        default: troupe
  --redis URL          wake workers through Redis (default: $REDIS_URL)
  --json               machine-readable output

DATE is ISO 8601: 2024-05-01, 2024-05-01T12:00, 2024-05-01T12:00:00.5+02:00 (UTC when
it has no offset). DURATION: 30s, 15m, 1h, 7d (that long before now).
Exit codes: 0 success, 1 usage (unknown command or option), 2 error (bad value, database).
`;

const COMMANDS = [
  "migrate",
  "list",
  "show",
  "send",
  "publish",
  "cancel",
  "members",
  "groups",
  "stats",
  "serve",
  "dashboard",
  "outbox",
];

/** Command-specific flags: given to another command they are an error, not silently ignored. */
const FLAG_COMMANDS: Record<string, readonly string[]> = {
  status: ["list"],
  "id-contains": ["list"],
  input: ["list"],
  "started-after": ["list"],
  "started-before": ["list"],
  actor: ["list", "stats"],
  since: ["stats"],
  limit: ["list", "outbox"],
  cursor: ["list", "outbox"],
  refresh: ["dashboard"],
};

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))?)?$/i;

/** A strict ISO 8601 date or date-time; UTC when it carries no offset. */
function parseDate(text: string, flag: string): Date | undefined {
  const m = ISO_DATE.exec(text.trim());
  if (!m) return undefined;
  const [y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0] = m.slice(1, 7).map((x) => Number(x ?? 0));
  const ms = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const offset = m[9] ? (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11])) : 0;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, ms);
  // Date rolls 2024-02-30 over into March: a field out of range is an error instead.
  if (
    date.getUTCFullYear() !== y ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== sec ||
    Number(m[10] ?? 0) > 23 ||
    Number(m[11] ?? 0) > 59
  )
    throw new ValidationError(`--${flag}: "${text}" is not a valid date`);
  return new Date(date.getTime() - offset * 60_000);
}

function dateFlag(text: string | undefined, flag: string): Date | undefined {
  if (text === undefined) return undefined;
  const date = parseDate(text, flag);
  if (!date)
    throw new ValidationError(
      `--${flag}: "${text}" is not an ISO 8601 date (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)`,
    );
  return date;
}

/** --since: an ISO date, or a duration before now ("1h", "7d"). */
function sinceFlag(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const date = parseDate(text, "since");
  if (date) return date;
  let ms: number;
  try {
    ms = toMillis(text, "--since");
  } catch {
    throw new ValidationError(
      `--since: "${text}" is neither an ISO 8601 date (2024-05-01T12:00:00Z) nor a duration (30s, 15m, 1h, 7d)`,
    );
  }
  return new Date(Date.now() - ms);
}

/** --input PATH=JSON, repeatable: the list() input filter. */
function inputFlags(pairs: string[] | undefined): Record<string, unknown> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const filter: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ValidationError(`--input: "${pair}" is not PATH=JSON (e.g. customer.id='"c-1"')`);
    const path = pair.slice(0, eq);
    const text = pair.slice(eq + 1);
    if (Object.hasOwn(filter, path)) throw new ValidationError(`--input: path "${path}" is given twice`);
    try {
      filter[path] = JSON.parse(text);
    } catch {
      throw new ValidationError(
        `--input ${path}=${text}: the value must be JSON (a string needs quotes: ${path}='"${text}"')`,
      );
    }
  }
  return filter;
}

function limitFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text)) throw new ValidationError(`--limit: "${text}" is not a whole number`);
  return Number(text);
}

function parseJson(text: string | undefined, what: string): unknown {
  if (text === undefined) throw new ValidationError(`${what} is required`);
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`${what} must be JSON, got: ${text}`);
  }
}

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      database: { type: "string" },
      schema: { type: "string" },
      redis: { type: "string" },
      status: { type: "string" },
      actor: { type: "string" },
      "id-contains": { type: "string" },
      input: { type: "string", multiple: true },
      "started-after": { type: "string" },
      "started-before": { type: "string" },
      since: { type: "string" },
      limit: { type: "string" },
      cursor: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      ...SERVE_OPTIONS,
      ...DASHBOARD_OPTIONS,
      ...OUTBOX_OPTIONS,
    },
  });
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (err) {
    // Unknown option, or an option without its value: a usage error.
    if (!String((err as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS")) throw err;
    process.stderr.write(`troupe: ${(err as Error).message}\n(troupe --help for usage)\n`);
    return 1;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (!command || values.help) {
    process.stdout.write(HELP);
    return command || values.help ? 0 : 1;
  }
  if (!COMMANDS.includes(command)) {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
    return 1;
  }
  for (const [flag, commands] of Object.entries(FLAG_COMMANDS)) {
    if ((values as Record<string, unknown>)[flag] !== undefined && !commands.includes(command)) {
      process.stderr.write(`troupe: --${flag} is not an option of "${command}"\n(troupe --help for usage)\n`);
      return 1;
    }
  }
  // Flag values are checked before the database is opened.
  const listFilter =
    command === "list"
      ? {
          ...(values.status !== undefined ? { status: values.status.split(",") as ActorStatus[] } : {}),
          ...(values.actor !== undefined ? { actor: values.actor } : {}),
          ...(values["id-contains"] !== undefined ? { idContains: values["id-contains"] } : {}),
          input: inputFlags(values.input),
          startedAfter: dateFlag(values["started-after"], "started-after"),
          startedBefore: dateFlag(values["started-before"], "started-before"),
          limit: limitFlag(values.limit),
          ...(values.cursor !== undefined ? { cursor: values.cursor } : {}),
        }
      : {};
  const statsFilter =
    command === "stats"
      ? {
          ...(values.actor !== undefined ? { actor: values.actor } : {}),
          since: sinceFlag(values.since),
        }
      : {};
  const dashboard = command === "dashboard" ? dashboardOptions(values, args) : undefined;
  const database = values.database ?? process.env.TROUPE_DATABASE_URL ?? process.env.DATABASE_URL;
  const redis = values.redis ?? process.env.REDIS_URL;
  const troupe = new Troupe({
    ...(database ? { database } : {}),
    ...(redis ? { redis } : {}),
    ...(values.schema ? { schema: values.schema } : {}),
    worker: false,
    migrate: command === "migrate" || command === "serve",
    // A deploy step an operator watches: a migration rewriting a large table may take longer
    // than any statement limit meant to catch half-open connections.
    ...(command === "migrate" ? { statementTimeout: false as const } : {}),
  });
  const print = (v: unknown, human: () => string) =>
    process.stdout.write((values.json ? JSON.stringify(v, null, 2) : human()) + "\n");
  await troupe.start();
  try {
    switch (command) {
      case "migrate":
        print({ ok: true }, () => "schema is up to date");
        return 0;
      case "list": {
        const page = await troupe.list(listFilter);
        print(page, () =>
          [
            ...page.items.map((a) => `${a.id}\t${a.actor}\t${a.status}\t${a.startedAt.toISOString()}`),
            ...(page.nextCursor ? [`-- more: --cursor ${page.nextCursor}`] : []),
          ].join("\n"),
        );
        return 0;
      }
      case "show": {
        const id = args[0];
        if (!id) throw new ValidationError("show needs an actor id");
        const info = await troupe.get(id);
        if (!info) throw new NotFoundError(`no actor with id "${id}"`);
        const history: HistoryEntry[] = [];
        for await (const e of troupe.history(id)) history.push(e);
        print({ ...info, history }, () =>
          [
            `${info.id} (${info.actor}) ${info.status}`,
            `input:  ${JSON.stringify(info.input)}`,
            ...(info.status === "completed" ? [`output: ${JSON.stringify(info.output)}`] : []),
            ...(info.error ? [`error:  ${info.error.message}`] : []),
            ...history.map(
              (e) =>
                `  ${e.generation}.${e.seq}\t${e.kind}\t${e.name}\t${e.error ? `error: ${e.error.message}` : (JSON.stringify(e.result) ?? "")}`,
            ),
          ].join("\n"),
        );
        return 0;
      }
      case "send": {
        const [id, ch, json] = args;
        if (!id || !ch) throw new ValidationError("send needs <actorId> <channel> <json>");
        const r = await troupe.send(id, ch, parseJson(json, "message"));
        print(r, () => `sent message ${r.id}`);
        return 0;
      }
      case "publish": {
        const [ch, json] = args;
        if (!ch) throw new ValidationError("publish needs <channel> <json>");
        const r = await troupe.publish(ch, parseJson(json, "message"));
        print(r, () => `published message ${r.id}`);
        return 0;
      }
      case "cancel": {
        const [id, ...reason] = args;
        if (!id) throw new ValidationError("cancel needs an actor id");
        await troupe.cancel(id, reason.length ? reason.join(" ") : undefined);
        print({ ok: true }, () => `cancel requested for ${id}`);
        return 0;
      }
      case "members": {
        const g = args[0];
        if (!g) throw new ValidationError("members needs a group name");
        const m = await troupe.members(g);
        print(m, () => m.join("\n"));
        return 0;
      }
      case "groups": {
        const gs = await troupe.groups();
        print(gs, () => gs.map((g) => `${g.group}\t${g.members}`).join("\n"));
        return 0;
      }
      case "stats": {
        const s = await troupe.stats(statsFilter);
        print(s, () =>
          Object.entries(s.byStatus)
            .map(([k, v]) => `${k}\t${v}`)
            .join("\n"),
        );
        return 0;
      }
      case "serve":
        return await serveCommand(troupe, values);
      case "dashboard":
        return await dashboardCommand(troupe, dashboard!);
      case "outbox":
        return await outboxCommand(troupe, args, values, print);
      default:
        process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
        return 1;
    }
  } finally {
    await troupe.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error & { code?: string };
    process.stderr.write(`troupe: ${e.code ? `[${e.code}] ` : ""}${e.message}\n`);
    process.exit(2);
  },
);
