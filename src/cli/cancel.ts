/** `troupe cancel <actorId> [reason]`: cancels an actor (its compensations run). */
import { ValidationError } from "../api/errors.js";
import type { Command } from "./command.js";

export const cancel: Command = {
  name: "cancel",
  help: `  cancel <actorId> [reason]        cancel an actor (compensations run)`,
  prepare: (_values, args) => async (troupe, out) => {
    const [id, ...reason] = args;
    if (!id) throw new ValidationError("cancel needs an actor id");
    await troupe.cancel(id, reason.length ? reason.join(" ") : undefined);
    out.print({ ok: true }, () => `cancel requested for ${id}`);
    return 0;
  },
};
