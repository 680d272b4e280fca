import type { Database } from "./database.js";
import { registerStatement } from "./prepared.js";
import { bindSchema } from "./sql.js";

/**
 * The database in one schema: what every store is built on — the handle, the schema's name,
 * and the binder that writes `{schema}` as that schema (a statement is bound once, then
 * reused as a named prepared statement).
 */
export class SchemaDb {
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
