/** `troupe members <group>`: the members of one process group. */
import { ValidationError } from "../api/errors.js";
import type { Command } from "./command.js";

export const members: Command = {
  name: "members",
  help: `  members <group>                  members of a process group`,
  prepare: (_values, args) => async (troupe, out) => {
    const g = args[0];
    if (!g) throw new ValidationError("members needs a group name");
    const m = await troupe.members(g);
    out.print(m, () => m.join("\n"));
    return 0;
  },
};
