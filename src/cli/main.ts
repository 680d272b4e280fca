/**
 * `troupe` — inspect and operate a troupe database from a shell: global options, the help
 * text and dispatch to one file per command (src/cli/<command>.ts).
 * Connection: --database (or TROUPE_DATABASE_URL / DATABASE_URL), --schema, --redis (or REDIS_URL).
 */
import { parseArgs } from "node:util";
import { Troupe } from "../troupe.js";
import type { Command, FlagValues, OptionSpecs } from "./command.js";
import { cancel } from "./cancel.js";
import { dashboard } from "./dashboard.js";
import { groups } from "./groups.js";
import { list } from "./list.js";
import { members } from "./members.js";
import { migrate } from "./migrate.js";
import { outbox } from "./outbox.js";
import { publish } from "./publish.js";
import { send } from "./send.js";
import { serve } from "./serve.js";
import { show } from "./show.js";
import { stats } from "./stats.js";
import { stdout } from "./output.js";

/** In the order `troupe --help` lists them. */
const COMMANDS: readonly Command[] = [
  migrate,
  list,
  show,
  send,
  publish,
  cancel,
  members,
  groups,
  stats,
  serve,
  dashboard,
  outbox,
];

const GLOBAL_OPTIONS = {
  database: { type: "string" },
  schema: { type: "string" },
  redis: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpecs;

/**
 * Flags other commands have always ignored (rather than refused): the HTTP flags of serve and
 * the dashboard, and `outbox --all`. Every other command flag given to a command that does
 * not read it is a usage error.
 */
const IGNORED_ELSEWHERE = new Set(["port", "host", "token", "outbox-url", "outbox-mode", "max-body", "all"]);

export const HELP = `troupe <command> [options]

Commands:
${COMMANDS.map((c) => c.help).join("\n")}

Options:
  --database URL|DIR   postgres://… or a PGlite directory (default: $TROUPE_DATABASE_URL, $DATABASE_URL, ./.troupe)
  --schema NAME        default: troupe
  --redis URL          wake workers through Redis (default: $REDIS_URL)
  --json               machine-readable output

DATE is ISO 8601: 2024-05-01, 2024-05-01T12:00, 2024-05-01T12:00:00.5+02:00 (UTC when
it has no offset). DURATION: 30s, 15m, 1h, 7d (that long before now).
Exit codes: 0 success, 1 usage (unknown command or option), 2 error (bad value, database).
`;

/** Every command's flags on one command line (a flag several commands read is defined once). */
const COMMAND_OPTIONS: OptionSpecs = {};
for (const c of COMMANDS)
  for (const [flag, spec] of Object.entries(c.options ?? {})) {
    const seen = COMMAND_OPTIONS[flag];
    if (seen && (seen.type !== spec.type || seen.multiple !== spec.multiple))
      throw new Error(`the --${flag} flag of ${c.name} is defined differently by another command`);
    COMMAND_OPTIONS[flag] = spec;
  }

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS },
  });
}

/** A command flag given to a command that does not read it. */
function strayFlag(command: Command, values: FlagValues): string | undefined {
  return Object.keys(COMMAND_OPTIONS).find(
    (flag) => values[flag] !== undefined && !IGNORED_ELSEWHERE.has(flag) && !command.options?.[flag],
  );
}

/**
 * Runs one command line. Resolves with the exit code for usage errors and results; rejects
 * when the command failed (the caller prints it and exits 2).
 */
export async function main(argv: string[]): Promise<number> {
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
  const [name, ...args] = positionals;
  if (!name || values.help) {
    process.stdout.write(HELP);
    return name || values.help ? 0 : 1;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${HELP}`);
    return 1;
  }
  const stray = strayFlag(command, values);
  if (stray !== undefined) {
    process.stderr.write(`troupe: --${stray} is not an option of "${name}"\n(troupe --help for usage)\n`);
    return 1;
  }
  // Flag values are checked before the database is opened.
  const run = command.prepare(values, args);
  const database = values.database ?? process.env.TROUPE_DATABASE_URL ?? process.env.DATABASE_URL;
  const redis = values.redis ?? process.env.REDIS_URL;
  const troupe = new Troupe({
    ...(database ? { database } : {}),
    ...(redis ? { redis } : {}),
    ...(values.schema ? { schema: values.schema } : {}),
    worker: false,
    migrate: command.open?.migrate === true,
    ...(command.open?.statementTimeout === false ? { statementTimeout: false as const } : {}),
  });
  await troupe.start();
  try {
    return await run(troupe, stdout(values.json === true));
  } finally {
    await troupe.stop();
  }
}
