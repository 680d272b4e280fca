import type { Database } from "./database.js";
import { bindSchema } from "./sql.js";

/** What every store needs: the database and SQL bound to the configured schema (bound once, then cached). */
export class StoreContext {
  private readonly bound = new Map<string, string>();
  constructor(
    readonly db: Database,
    readonly schema: string,
  ) {}

  sql(text: string): string {
    let out = this.bound.get(text);
    if (out === undefined) {
      out = bindSchema(this.schema, text);
      this.bound.set(text, out);
    }
    return out;
  }
}

/** Milliseconds as an interval expression parameter. */
export const MS = (param: string) => `(${param}::double precision * interval '1 millisecond')`;
