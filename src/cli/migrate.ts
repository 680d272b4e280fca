/** `troupe migrate`: applies pending migrations (opening the Troupe does it; this reports it). */
import type { Command } from "./command.js";

export const migrate: Command = {
  name: "migrate",
  help: `  migrate                          apply pending migrations`,
  // A deploy step an operator watches: a migration rewriting a large table may take longer
  // than any statement limit meant to catch half-open connections.
  open: { migrate: true, statementTimeout: false },
  prepare: () => async (_troupe, out) => {
    out.print({ ok: true }, () => "schema is up to date");
    return 0;
  },
};
