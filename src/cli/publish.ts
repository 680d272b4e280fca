/** `troupe publish <channel> <json>`: a message on a broadcast or competing channel. */
import { ValidationError } from "../api/errors.js";
import type { Command } from "./command.js";
import { parseJson } from "./flags.js";

export const publish: Command = {
  name: "publish",
  help: `  publish <channel> <json>         a broadcast/competing message`,
  prepare: (_values, args) => async (troupe, out) => {
    const [ch, json] = args;
    if (!ch) throw new ValidationError("publish needs <channel> <json>");
    const r = await troupe.publish(ch, parseJson(json, "message"));
    out.print(r, () => `published message ${r.id}`);
    return 0;
  },
};
