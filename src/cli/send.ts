/** `troupe send <actorId> <channel> <json>`: a direct message to one actor. */
import { ValidationError } from "../api/errors.js";
import type { Command } from "./command.js";
import { parseJson } from "./flags.js";

export const send: Command = {
  name: "send",
  help: `  send <actorId> <channel> <json>  a direct message`,
  prepare: (_values, args) => async (troupe, out) => {
    const [id, ch, json] = args;
    if (!id || !ch) throw new ValidationError("send needs <actorId> <channel> <json>");
    const r = await troupe.send(id, ch, parseJson(json, "message"));
    out.print(r, () => `sent message ${r.id}`);
    return 0;
  },
};
