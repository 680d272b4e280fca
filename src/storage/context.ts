import type { Database } from "./database.js";
import { registerStatement } from "./prepared.js";
import { bindSchema } from "./sql.js";

/** What every store needs: the database and SQL bound to the configured schema (bound once, then cached). */
export class StoreContext {
  private readonly bound = new Map<string, string>();
  constructor(
    readonly db: Database,
    readonly schema: string,
  ) {}

  /** A fixed statement: bound once, and eligible to run as a named prepared statement. */
  sql(text: string): string {
    let out = this.bound.get(text);
    if (out === undefined) {
      out = bindSchema(this.schema, text);
      this.bound.set(text, out);
      registerStatement(out);
    }
    return out;
  }

  /**
   * A statement whose text varies per call (filters, limits) or whose plan must follow its
   * parameters (a generic plan would be bad): bound each time, never cached or prepared.
   */
  adHoc(text: string): string {
    return bindSchema(this.schema, text);
  }
}

/** Milliseconds as an interval expression parameter. */
export const MS = (param: string) => `(${param}::double precision * interval '1 millisecond')`;
