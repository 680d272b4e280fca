/** `troupe groups`: every process group with its size. */
import type { Command } from "./command.js";

export const groups: Command = {
  name: "groups",
  help: `  groups                           every group with its size`,
  prepare: () => async (troupe, out) => {
    const gs = await troupe.groups();
    out.print(gs, () => gs.map((g) => `${g.group}\t${g.members}`).join("\n"));
    return 0;
  },
};
