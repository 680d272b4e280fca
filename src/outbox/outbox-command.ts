import { ValidationError } from "../errors.js";
import { StoreContext } from "../storage/context.js";
import type { Troupe } from "../troupe.js";
import { OutboxStore } from "./outbox-store.js";

export const OUTBOX_HELP = `  outbox stats                     events by status (pending, processing, sent, dead)
  outbox dead [--limit N] [--cursor C]
                                   dead letters, oldest first
  outbox redrive <eventId…> | --all
                                   dead letters back to pending (attempts reset)`;

export interface OutboxFlags {
  limit?: string | undefined;
  cursor?: string | undefined;
  all?: boolean | undefined;
}

/** `parseArgs` options the outbox command adds (limit and cursor are shared with list). */
export const OUTBOX_OPTIONS = { all: { type: "boolean" } } as const;

/** `troupe outbox …`. Returns the exit code. */
export async function outboxCommand(
  troupe: Troupe,
  args: readonly string[],
  flags: OutboxFlags,
  print: (value: unknown, human: () => string) => void,
): Promise<number> {
  const storage = troupe._storage;
  const store = new OutboxStore(new StoreContext(storage.db, storage.schema));
  const [sub, ...rest] = args;
  switch (sub) {
    case "stats": {
      const c = await store.counts();
      print(c, () =>
        Object.entries(c)
          .map(([k, v]) => `${k}\t${v}`)
          .join("\n"),
      );
      return 0;
    }
    case "dead": {
      const page = await store.deadLetters({
        ...(flags.limit ? { limit: Number(flags.limit) } : {}),
        ...(flags.cursor ? { cursor: flags.cursor } : {}),
      });
      print(page, () =>
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
      const r = await store.redrive(flags.all ? "all" : rest);
      print(r, () => `re-drove ${r.count} dead letter(s)`);
      return 0;
    }
    default:
      throw new ValidationError(`unknown outbox command "${sub ?? ""}": use stats, dead or redrive`);
  }
}
