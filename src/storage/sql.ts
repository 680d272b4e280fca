import { ValidationError } from "../errors.js";

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function validateSchemaName(schema: string): string {
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new ValidationError(
      `schema "${String(schema)}" is not a valid schema name (lowercase letters, digits and _, at most 63, not starting with a digit)`,
    );
  }
  return schema;
}

/** SQL text is written with `{schema}.table`; this binds it to the configured schema once. */
export function bindSchema(schema: string, text: string): string {
  return text.replaceAll("{schema}", `"${schema}"`);
}

/** Advisory-lock namespaces (first key of the two-int form) so troupe's locks never collide with each other. */
export const LOCK_NS = {
  migrate: 0x7470_0001,
  channel: 0x7470_0002,
} as const;
