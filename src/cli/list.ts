/** `troupe list`: actors, newest first, filtered and paged like `troupe.list()`. */
import type { ListFilter } from "../storage/list-query.js";
import type { ActorStatus } from "../storage/rows.js";
import { text, type Command } from "./command.js";
import { dateFlag, inputFlags, limitFlag } from "./flags.js";

export const list: Command = {
  name: "list",
  help: `  list [--status S[,S…]] [--actor A] [--id-contains X] [--input PATH=JSON]…
       [--started-after DATE] [--started-before DATE] [--limit N] [--cursor C]
                                   actors, newest first; --input compares a JSON path of
                                   the input with a JSON value (repeatable, all must match):
                                   --input customer.id='"c-1"' --input items.0.qty=2`,
  options: {
    status: { type: "string" },
    "id-contains": { type: "string" },
    input: { type: "string", multiple: true },
    "started-after": { type: "string" },
    "started-before": { type: "string" },
    actor: { type: "string" },
    limit: { type: "string" },
    cursor: { type: "string" },
  },
  prepare(values) {
    const status = text(values, "status");
    const actor = text(values, "actor");
    const idContains = text(values, "id-contains");
    const cursor = text(values, "cursor");
    const filter: ListFilter = {
      ...(status !== undefined ? { status: status.split(",") as ActorStatus[] } : {}),
      ...(actor !== undefined ? { actor } : {}),
      ...(idContains !== undefined ? { idContains } : {}),
      input: inputFlags(values.input as string[] | undefined),
      startedAfter: dateFlag(text(values, "started-after"), "started-after"),
      startedBefore: dateFlag(text(values, "started-before"), "started-before"),
      limit: limitFlag(text(values, "limit")),
      ...(cursor !== undefined ? { cursor } : {}),
    };
    return async (troupe, out) => {
      const page = await troupe.list(filter);
      out.print(page, () =>
        [
          ...page.items.map((a) => `${a.id}\t${a.actor}\t${a.status}\t${a.startedAt.toISOString()}`),
          ...(page.nextCursor ? [`-- more: --cursor ${page.nextCursor}`] : []),
        ].join("\n"),
      );
      return 0;
    };
  },
};
