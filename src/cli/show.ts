/** `troupe show <actorId>`: one actor and its whole history. */
import { NotFoundError, ValidationError } from "../api/errors.js";
import type { HistoryEntry } from "../api/types.js";
import type { Command } from "./command.js";

export const show: Command = {
  name: "show",
  help: `  show <actorId>                   an actor and its history`,
  prepare: (_values, args) => async (troupe, out) => {
    const id = args[0];
    if (!id) throw new ValidationError("show needs an actor id");
    const info = await troupe.get(id);
    if (!info) throw new NotFoundError(`no actor with id "${id}"`);
    const history: HistoryEntry[] = [];
    for await (const e of troupe.history(id)) history.push(e);
    out.print({ ...info, history }, () =>
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
  },
};
