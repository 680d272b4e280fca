/** `troupe outbox stats | dead | redrive`: inspect the outbox and re-drive dead letters. */
import { ValidationError } from "../api/errors.js";
import { text, type Command } from "./command.js";

export interface OutboxFlags {
  limit?: string | undefined;
  cursor?: string | undefined;
  all?: boolean | undefined;
}

export const outbox: Command = {
  name: "outbox",
  help: `  outbox stats                     events by status (pending, processing, sent, dead)
  outbox dead [--limit N] [--cursor C]
                                   dead letters, oldest first
  outbox redrive <eventId…> | --all
                                   dead letters back to pending (attempts reset)`,
  options: { limit: { type: "string" }, cursor: { type: "string" }, all: { type: "boolean" } },
  prepare: (values, args) => async (troupe, out) => {
    const flags: OutboxFlags = {
      limit: text(values, "limit"),
      cursor: text(values, "cursor"),
      all: values.all === true,
    };
    const [sub, ...rest] = args;
    switch (sub) {
      case "stats": {
        const c = await troupe.outboxCounts();
        out.print(c, () =>
          Object.entries(c)
            .map(([k, v]) => `${k}\t${v}`)
            .join("\n"),
        );
        return 0;
      }
      case "dead": {
        const page = await troupe.outboxDeadLetters({
          ...(flags.limit ? { limit: Number(flags.limit) } : {}),
          ...(flags.cursor ? { cursor: flags.cursor } : {}),
        });
        out.print(page, () =>
          [
            ...page.items.map(
              (e) => `${e.event.id}\t${e.event.type}\t${e.attempts} attempts\t${e.lastError ?? ""}`,
            ),
            ...(page.nextCursor ? [`-- more: --cursor ${page.nextCursor}`] : []),
          ].join("\n"),
        );
        return 0;
      }
      case "redrive": {
        if (!flags.all && rest.length === 0)
          throw new ValidationError("outbox redrive needs event ids or --all");
        const r = await troupe.redriveOutbox(flags.all ? "all" : rest);
        out.print(r, () => `re-drove ${r.count} dead letter(s)`);
        return 0;
      }
      default:
        throw new ValidationError(`unknown outbox command "${sub ?? ""}": use stats, dead or redrive`);
    }
  },
};
