import { createHash } from "node:crypto";

/**
 * troupe's own statements, by text, with the name they are prepared under. Only texts
 * registered here are ever sent as named prepared statements (parsed and planned once per
 * connection instead of on every call); user SQL inside `ctx.transaction` and SQL whose
 * text varies per call never are, so the set stays small and bounded.
 */
const names = new Map<string, string>();

export function registerStatement(text: string): void {
  if (!names.has(text))
    names.set(text, `troupe_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`);
}

export function preparedName(text: string): string | undefined {
  return names.get(text);
}
