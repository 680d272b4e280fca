import { TroupeError, errorSpec } from "./errors.js";
import type { RecordedError } from "./types.js";

/**
 * How an error is kept in the journal and in an actor's row (RecordedError), and rebuilt when
 * a replay meets it again: through ERROR_REGISTRY, so troupe's own codes come back as their class.
 */

export function recordError(err: unknown): RecordedError {
  if (err instanceof Error) {
    const out: RecordedError = { name: err.name, message: err.message };
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string") out.code = code;
    if (err.stack) out.stack = err.stack;
    return out;
  }
  return { name: "Error", message: String(err) };
}

/**
 * Rebuilds a throwable from a recorded error (used when replaying a failed step): the
 * registry's class for troupe's codes (its constructor is not run, so instance fields beyond
 * code, message and retryable are absent), a plain TroupeError for other codes, an Error without.
 */
export function errorFromRecord(rec: RecordedError): Error {
  let err: Error;
  if (rec.code) {
    err = new TroupeError(rec.code, rec.message);
    const spec = errorSpec(rec.code);
    if (spec) Object.setPrototypeOf(err, spec.class.prototype);
  } else {
    err = new Error(rec.message);
  }
  err.name = rec.name;
  if (rec.stack) err.stack = rec.stack;
  return err;
}
