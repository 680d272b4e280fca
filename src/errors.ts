/**
 * Every failure troupe reports is a TroupeError with a stable string `code`.
 * Match on `code` (or `instanceof`), never on message text.
 */
export class TroupeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input: a name, id, duration, option or payload that troupe cannot accept. Nothing was changed. */
export class ValidationError extends TroupeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("VALIDATION", message, options);
  }
}

/** A value cannot be encoded (function, symbol, cyclic structure …). */
export class SerializationError extends TroupeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NOT_SERIALIZABLE", message, options);
  }
}

/** An encoded payload is larger than the configured `maxPayloadBytes`. */
export class PayloadTooLargeError extends TroupeError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super("PAYLOAD_TOO_LARGE", `payload is ${size} bytes, the limit is ${limit} bytes`);
  }
}

/** `spawn` named an actor that is not registered with this Troupe. */
export class UnknownActorError extends TroupeError {
  constructor(readonly actorName: string) {
    super("UNKNOWN_ACTOR", `no actor named "${actorName}" is registered with this Troupe`);
  }
}

/** An actor id (or other entity) that does not exist. */
export class NotFoundError extends TroupeError {
  constructor(message: string) {
    super("NOT_FOUND", message);
  }
}

/** A second active actor with the same uniqueKey. */
export class DuplicateActorError extends TroupeError {
  constructor(
    readonly uniqueKey: string,
    readonly existingId: string,
  ) {
    super("DUPLICATE_ACTOR", `an active actor (${existingId}) already holds uniqueKey "${uniqueKey}"`);
  }
}

/** Spawn with an existing id but a different actor type. */
export class ActorIdConflictError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly existingActor: string,
  ) {
    super("ID_CONFLICT", `actor id "${actorId}" is already used by an actor of type "${existingActor}"`);
  }
}

/** cancel() on an actor that already completed or failed. */
export class NotCancellableError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly status: string,
  ) {
    super(
      "NOT_CANCELLABLE",
      `actor "${actorId}" is ${status}; only running or waiting actors can be cancelled`,
    );
  }
}

/** Waiting for something (a result, a lock) took longer than allowed. */
export class TimeoutError extends TroupeError {
  constructor(message: string) {
    super("TIMEOUT", message);
  }
}

/** A step exceeded its `timeout`. */
export class StepTimeoutError extends TroupeError {
  constructor(stepName: string, ms: number) {
    super("STEP_TIMEOUT", `step "${stepName}" did not finish within ${ms} ms`);
  }
}

/** Replay found a journaled operation that differs from what the code does now. */
export class NonDeterminismError extends TroupeError {
  constructor(
    readonly seq: number,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      "NON_DETERMINISM",
      `non-deterministic replay at position ${seq}: the journal has ${expected} but the code now does ${actual}`,
    );
  }
}

/** This worker lost the actor's lease (another worker took over); nothing after the loss was committed. */
export class LockLostError extends TroupeError {
  constructor(readonly actorId: string) {
    super("LOCK_LOST", `lease on actor "${actorId}" was lost to another worker`);
  }
}

/** The database schema was written by a newer troupe than this one. */
export class SchemaTooNewError extends TroupeError {
  constructor(
    readonly databaseVersion: number,
    readonly codeVersion: number,
  ) {
    super(
      "SCHEMA_TOO_NEW",
      `the database schema is at migration ${databaseVersion} but this troupe only knows up to ${codeVersion}; upgrade troupe`,
    );
  }
}

/** The database schema has not been migrated (start with migrate: true, or run `troupe migrate`). */
export class SchemaMissingError extends TroupeError {
  constructor(message: string) {
    super("SCHEMA_MISSING", message);
  }
}

/** The Troupe is not started (or already stopped). */
export class NotStartedError extends TroupeError {
  constructor(what: string) {
    super("NOT_STARTED", `${what}: call troupe.start() first`);
  }
}

/** An actor failed; `result()` rejects with this, carrying the recorded error. */
export class ActorFailedError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly error: RecordedError,
  ) {
    super("ACTOR_FAILED", `actor "${actorId}" failed: ${error.message}`);
  }
}

/** Throw this from a step to fail at once, without retries. */
export class NonRetryableError extends TroupeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NON_RETRYABLE", message, options);
  }
}

/** A step that exhausted its retries; `cause` is the last error. */
export class StepFailedError extends TroupeError {
  constructor(
    readonly stepName: string,
    readonly attempts: number,
    readonly lastError: RecordedError,
  ) {
    super("STEP_FAILED", `step "${stepName}" failed after ${attempts} attempt(s): ${lastError.message}`);
  }
}

/**
 * The database could not be reached or dropped the connection (server restarting or shut
 * down, connection refused, reset or terminated, too many connections). Retryable: the
 * same call may succeed once the database is back. `cause` is the driver's error. A write
 * whose commit was cut off this way may or may not have committed: retry it with an
 * `idempotencyKey` (or an actor `id`) to make it once.
 */
export class DatabaseUnavailableError extends TroupeError {
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super("DATABASE_UNAVAILABLE", message, options);
  }
}

/** How an error is kept in the database and handed back by `result()`. */
export interface RecordedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

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

/** Error classes by code, so a replayed error is the same class as the live one (instanceof works on replay). */
const CLASSES = new Map<string, new (...args: any[]) => TroupeError>();

/** Registers an error class for its code (troupe's own classes register themselves below). */
export function registerErrorClass(code: string, cls: new (...args: any[]) => TroupeError): void {
  CLASSES.set(code, cls);
}

/** Rebuilds a throwable from a recorded error (used when replaying a failed step). */
export function errorFromRecord(rec: RecordedError): Error {
  let err: Error;
  if (rec.code) {
    err = new TroupeError(rec.code, rec.message);
    const cls = CLASSES.get(rec.code);
    if (cls) Object.setPrototypeOf(err, cls.prototype);
  } else {
    err = new Error(rec.message);
  }
  err.name = rec.name;
  if (rec.stack) err.stack = rec.stack;
  return err;
}

for (const [code, cls] of [
  ["VALIDATION", ValidationError],
  ["NOT_SERIALIZABLE", SerializationError],
  ["PAYLOAD_TOO_LARGE", PayloadTooLargeError],
  ["UNKNOWN_ACTOR", UnknownActorError],
  ["NOT_FOUND", NotFoundError],
  ["DUPLICATE_ACTOR", DuplicateActorError],
  ["ID_CONFLICT", ActorIdConflictError],
  ["NOT_CANCELLABLE", NotCancellableError],
  ["TIMEOUT", TimeoutError],
  ["STEP_TIMEOUT", StepTimeoutError],
  ["NON_DETERMINISM", NonDeterminismError],
  ["LOCK_LOST", LockLostError],
  ["SCHEMA_TOO_NEW", SchemaTooNewError],
  ["SCHEMA_MISSING", SchemaMissingError],
  ["NOT_STARTED", NotStartedError],
  ["ACTOR_FAILED", ActorFailedError],
  ["NON_RETRYABLE", NonRetryableError],
  ["STEP_FAILED", StepFailedError],
  ["DATABASE_UNAVAILABLE", DatabaseUnavailableError],
] as const) {
  registerErrorClass(code, cls);
}
