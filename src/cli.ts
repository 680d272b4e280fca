#!/usr/bin/env node
/**
 * `troupe` — inspect and operate a troupe database from a shell.
 * Connection: --database (or TROUPE_DATABASE_URL / DATABASE_URL), --schema, --redis (or REDIS_URL).
 */
import { parseArgs } from "node:util";
import { TroupeError } from "./errors.js";
import { Troupe, type HistoryEntry } from "./troupe.js";
import type { ActorStatus } from "./storage/rows.js";
import { OUTBOX_HELP, OUTBOX_OPTIONS, outboxCommand } from "./outbox/outbox-command.js";
import { SERVE_HELP, SERVE_OPTIONS, serveCommand } from "./serve/serve-command.js";

const HELP = `troupe <command> [options]

Commands:
  migrate                          apply pending migrations
  list [--status S] [--actor A] [--id-contains X] [--limit N] [--cursor C]
  show <actorId>                   an actor and its history
  send <actorId> <channel> <json>  a direct message
  publish <channel> <json>         a broadcast/competing message
  cancel <actorId> [reason]        cancel an actor (compensations run)
  members <group>                  members of a process group
  groups                           every group with its size
  stats                            actors by status
${SERVE_HELP}
${OUTBOX_HELP}

Options:
  --database URL|DIR   postgres://… or a PGlite directory (default: $TROUPE_DATABASE_URL, $DATABASE_URL, ./.troupe)
  --schema NAME        default: troupe
  --redis URL          wake workers through Redis (default: $REDIS_URL)
  --json               machine-readable output
`;

function parseJson(text: string | undefined, what: string): unknown {
  if (text === undefined) throw new TroupeError("VALIDATION", `${what} is required`);
  try {
    return JSON.parse(text);
  } catch {
    throw new TroupeError("VALIDATION", `${what} must be JSON, got: ${text}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      database: { type: "string" },
      schema: { type: "string" },
      redis: { type: "string" },
      status: { type: "string" },
      actor: { type: "string" },
      "id-contains": { type: "string" },
      limit: { type: "string" },
      cursor: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      ...SERVE_OPTIONS,
      ...OUTBOX_OPTIONS,
    },
  });
  const [command, ...args] = positionals;
  if (!command || values.help) {
    process.stdout.write(HELP);
    return command || values.help ? 0 : 1;
  }
  const database = values.database ?? process.env.TROUPE_DATABASE_URL ?? process.env.DATABASE_URL;
  const redis = values.redis ?? process.env.REDIS_URL;
  const troupe = new Troupe({
    ...(database ? { database } : {}),
    ...(redis ? { redis } : {}),
    ...(values.schema ? { schema: values.schema } : {}),
    worker: false,
    migrate: command === "migrate" || command === "serve",
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
        const page = await troupe.list({
          ...(values.status ? { status: values.status.split(",") as ActorStatus[] } : {}),
          ...(values.actor ? { actor: values.actor } : {}),
          ...(values["id-contains"] ? { idContains: values["id-contains"] } : {}),
          ...(values.limit ? { limit: Number(values.limit) } : {}),
          ...(values.cursor ? { cursor: values.cursor } : {}),
        });
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
        if (!id) throw new TroupeError("VALIDATION", "show needs an actor id");
        const info = await troupe.get(id);
        if (!info) throw new TroupeError("NOT_FOUND", `no actor with id "${id}"`);
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
        if (!id || !ch) throw new TroupeError("VALIDATION", "send needs <actorId> <channel> <json>");
        const r = await troupe.send(id, ch, parseJson(json, "message"));
        print(r, () => `sent message ${r.id}`);
        return 0;
      }
      case "publish": {
        const [ch, json] = args;
        if (!ch) throw new TroupeError("VALIDATION", "publish needs <channel> <json>");
        const r = await troupe.publish(ch, parseJson(json, "message"));
        print(r, () => `published message ${r.id}`);
        return 0;
      }
      case "cancel": {
        const [id, ...reason] = args;
        if (!id) throw new TroupeError("VALIDATION", "cancel needs an actor id");
        await troupe.cancel(id, reason.length ? reason.join(" ") : undefined);
        print({ ok: true }, () => `cancel requested for ${id}`);
        return 0;
      }
      case "members": {
        const g = args[0];
        if (!g) throw new TroupeError("VALIDATION", "members needs a group name");
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
        const s = await troupe.stats();
        print(s, () =>
          Object.entries(s.byStatus)
            .map(([k, v]) => `${k}\t${v}`)
            .join("\n"),
        );
        return 0;
      }
      case "serve":
        return await serveCommand(troupe, values);
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
