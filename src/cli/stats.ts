/** `troupe stats`: actors by status, like `troupe.stats()`. */
import { text, type Command } from "./command.js";
import { sinceFlag } from "./flags.js";

export const stats: Command = {
  name: "stats",
  help: `  stats [--actor A] [--since DATE|DURATION]
                                   actors by status; --since 2024-05-01T00:00:00Z or 1h`,
  options: { actor: { type: "string" }, since: { type: "string" } },
  prepare(values) {
    const actor = text(values, "actor");
    const filter = { ...(actor !== undefined ? { actor } : {}), since: sinceFlag(text(values, "since")) };
    return async (troupe, out) => {
      const s = await troupe.stats(filter);
      out.print(s, () =>
        Object.entries(s.byStatus)
          .map(([k, v]) => `${k}\t${v}`)
          .join("\n"),
      );
      return 0;
    };
  },
};
