import type { ChannelMode, DatabaseLockHolder, RecordedError } from "./types.js";

export type { DatabaseLockHolder, RecordedError } from "./types.js";

/**
 * Every error troupe raises, in one module: the classes, and below them ERROR_REGISTRY, the
 * one table of codes that `retryable`, replay (recorded-errors.ts) and the HTTP answers of
 * `troupe serve` and the dashboard (serve/http-errors.ts) read. A new failure is a class here
 * and a row in the table.
 */

/**
 * Every failure troupe reports is a TroupeError with a stable string `code`.
 * Match on `code` (or `instanceof`), never on message text.
 */
export class TroupeError extends Error {
  readonly code: string;
  /** The same call may succeed later (only DATABASE_UNAVAILABLE); read from the registry. */
  readonly retryable: boolean;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retryable = errorSpec(code)?.retryable === true;
  }
}

// ---- bad input -------------------------------------------------------------------------

/** Bad input: a name, id, duration, option or payload that troupe cannot accept. Nothing was changed. */
export class ValidationError extends TroupeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("VALIDATION" satisfies ErrorCode, message, options);
  }
}

/** A value cannot be encoded (function, symbol, cyclic structure …). */
export class SerializationError extends TroupeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NOT_SERIALIZABLE" satisfies ErrorCode, message, options);
  }
}

/** An encoded payload is larger than the configured `maxPayloadBytes`. */
export class PayloadTooLargeError extends TroupeError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super("PAYLOAD_TOO_LARGE" satisfies ErrorCode, `payload is ${size} bytes, the limit is ${limit} bytes`);
  }
}

/** The payload did not pass the channel's schema. Nothing was written. */
export class MessageValidationError extends TroupeError {
  constructor(channelName: string, cause: unknown) {
    super(
      "INVALID_MESSAGE" satisfies ErrorCode,
      `message for channel "${channelName}" failed its schema: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** Subscribing with a mode other than the channel's. */
export class ChannelModeConflictError extends TroupeError {
  constructor(
    readonly channelName: string,
    readonly existing: ChannelMode,
    readonly requested: ChannelMode,
  ) {
    super(
      "CHANNEL_MODE_CONFLICT" satisfies ErrorCode,
      `channel "${channelName}" is a ${existing} channel; it cannot be used as ${requested}`,
    );
  }
}

/** receive() on a channel the actor has not subscribed to. */
export class NotSubscribedError extends TroupeError {
  constructor(channelName: string) {
    super(
      "NOT_SUBSCRIBED" satisfies ErrorCode,
      `receive on "${channelName}" without a subscription: call ctx.subscribe first`,
    );
  }
}

// ---- actors ------------------------------------------------------------------------------

/** `spawn` named an actor that is not registered with this Troupe. */
export class UnknownActorError extends TroupeError {
  constructor(readonly actorName: string) {
    super(
      "UNKNOWN_ACTOR" satisfies ErrorCode,
      `no actor named "${actorName}" is registered with this Troupe`,
    );
  }
}

/** An actor id (or other entity) that does not exist. */
export class NotFoundError extends TroupeError {
  constructor(message: string) {
    super("NOT_FOUND" satisfies ErrorCode, message);
  }
}

/** A second active actor with the same uniqueKey. */
export class DuplicateActorError extends TroupeError {
  constructor(
    readonly uniqueKey: string,
    readonly existingId: string,
  ) {
    super(
      "DUPLICATE_ACTOR" satisfies ErrorCode,
      `an active actor (${existingId}) already holds uniqueKey "${uniqueKey}"`,
    );
  }
}

/** Spawn with an existing id but a different actor type. */
export class ActorIdConflictError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly existingActor: string,
  ) {
    super(
      "ID_CONFLICT" satisfies ErrorCode,
      `actor id "${actorId}" is already used by an actor of type "${existingActor}"`,
    );
  }
}

/** cancel() on an actor that already completed or failed. */
export class NotCancellableError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly status: string,
  ) {
    super(
      "NOT_CANCELLABLE" satisfies ErrorCode,
      `actor "${actorId}" is ${status}; only running or waiting actors can be cancelled`,
    );
  }
}

/** An actor failed; `result()` rejects with this, carrying the recorded error. */
export class ActorFailedError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly error: RecordedError,
  ) {
    super("ACTOR_FAILED" satisfies ErrorCode, `actor "${actorId}" failed: ${error.message}`);
  }
}

/** An actor was cancelled; `result()` rejects with this. */
export class ActorCancelledError extends TroupeError {
  constructor(
    readonly actorId: string,
    readonly reason: string | null,
  ) {
    super("CANCELLED" satisfies ErrorCode, `actor "${actorId}" was cancelled${reason ? `: ${reason}` : ""}`);
  }
}

/** Waiting for something (a result, a lock) took longer than allowed. */
export class TimeoutError extends TroupeError {
  constructor(message: string) {
    super("TIMEOUT" satisfies ErrorCode, message);
  }
}

// ---- steps and replay --------------------------------------------------------------------

/** A step exceeded its `timeout`. */
export class StepTimeoutError extends TroupeError {
  constructor(stepName: string, ms: number) {
    super("STEP_TIMEOUT" satisfies ErrorCode, `step "${stepName}" did not finish within ${ms} ms`);
  }
}

/** Throw this from a step to fail at once, without retries. */
export class NonRetryableError extends TroupeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NON_RETRYABLE" satisfies ErrorCode, message, options);
  }
}

/** A step that exhausted its retries; `cause` is the last error. */
export class StepFailedError extends TroupeError {
  constructor(
    readonly stepName: string,
    readonly attempts: number,
    readonly lastError: RecordedError,
  ) {
    super(
      "STEP_FAILED" satisfies ErrorCode,
      `step "${stepName}" failed after ${attempts} attempt(s): ${lastError.message}`,
    );
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
      "NON_DETERMINISM" satisfies ErrorCode,
      `non-deterministic replay at position ${seq}: the journal has ${expected} but the code now does ${actual}`,
    );
  }
}

/** This worker lost the actor's lease (another worker took over); nothing after the loss was committed. */
export class LockLostError extends TroupeError {
  constructor(readonly actorId: string) {
    super("LOCK_LOST" satisfies ErrorCode, `lease on actor "${actorId}" was lost to another worker`);
  }
}

// ---- the database and the Troupe's lifecycle ---------------------------------------------

/** The database schema was written by a newer troupe than this one. */
export class SchemaTooNewError extends TroupeError {
  constructor(
    readonly databaseVersion: number,
    readonly codeVersion: number,
  ) {
    super(
      "SCHEMA_TOO_NEW" satisfies ErrorCode,
      `the database schema is at migration ${databaseVersion} but this troupe only knows up to ${codeVersion}; upgrade troupe`,
    );
  }
}

/** The database schema has not been migrated (start with migrate: true, or run `troupe migrate`). */
export class SchemaMissingError extends TroupeError {
  constructor(message: string) {
    super("SCHEMA_MISSING" satisfies ErrorCode, message);
  }
}

/**
 * An embedded (PGlite) data directory is open in another process, or in another Troupe of
 * this process: PGlite is one process's private database, and a second opener would lose
 * writes. Nothing was opened or written. Use a real PostgreSQL for several processes.
 */
export class DatabaseLockedError extends TroupeError {
  constructor(
    readonly dataDir: string,
    readonly lockFile: string,
    readonly holder: DatabaseLockHolder | null,
    sameProcess: boolean,
  ) {
    const who = sameProcess
      ? `another Troupe in this process (pid ${process.pid})`
      : !holder
        ? "another process (its lock file could not be read)"
        : `process ${holder.pid} on ${holder.hostname} (started ${holder.processStartedAt}, locked ${holder.lockedAt})`;
    super(
      "DATABASE_LOCKED" satisfies ErrorCode,
      `embedded database ${dataDir} is in use by ${who}; stop it first, or use a real PostgreSQL to share a database (lock file ${lockFile})`,
    );
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
  declare readonly retryable: true;
  constructor(message: string, options?: { cause?: unknown }) {
    super("DATABASE_UNAVAILABLE" satisfies ErrorCode, message, options);
  }
}

/**
 * Something (a Troupe, a server, an outbox relay) is not started, or already stopped.
 * `stopped: true` words it for a stopped object that cannot be started again.
 */
export class NotStartedError extends TroupeError {
  constructor(what: string, options?: { stopped?: boolean }) {
    super(
      "NOT_STARTED" satisfies ErrorCode,
      options?.stopped ? `${what} was stopped; create a new one` : `${what}: call troupe.start() first`,
    );
  }
}

// ---- the outbox and inbound events -------------------------------------------------------

/** A failed send to an outbox sink, with hints for the relay. */
export class SinkError extends TroupeError {
  readonly permanent: boolean;
  readonly retryAfterMs: number | undefined;
  /** The HTTP status the sink's receiver answered with, if any. */
  readonly status: number | undefined;
  constructor(
    message: string,
    opts: { permanent?: boolean; retryAfterMs?: number; status?: number; cause?: unknown } = {},
  ) {
    super(
      "SINK_FAILED" satisfies ErrorCode,
      message,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.permanent = opts.permanent ?? false;
    this.retryAfterMs = opts.retryAfterMs;
    this.status = opts.status;
  }
}

/**
 * An HTTP request that is not an acceptable CloudEvent (`POST /events` of `troupe serve`).
 * Its codes are the registry rows with this class; `status` is their HTTP status.
 */
export class IngestError extends TroupeError {
  // ErrorCode, not only the ingest codes: a narrower type would be circular (the registry names this class).
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
  /** The HTTP status to answer with (from the registry, so a replayed one has it too). */
  get status(): number {
    return httpStatus(this.code);
  }
}

// ---- the registry ------------------------------------------------------------------------

/** What troupe knows about one of its codes. */
export interface ErrorSpec {
  /** The class a recorded error with this code is rebuilt as, so `instanceof` holds after a replay. */
  readonly class: abstract new (...args: never[]) => TroupeError;
  /**
   * How `troupe serve` and the dashboard answer an error with this code. 500 means it is
   * not the caller's to see: they answer `INTERNAL` and log the error instead.
   */
  readonly http: number;
  /** The same call may succeed later (`err.retryable`). */
  readonly retryable?: true;
}

/**
 * The one table of troupe's error codes. Codes are a contract (tests and callers match on
 * them): add rows, never rename one.
 */
export const ERROR_REGISTRY = {
  VALIDATION: { class: ValidationError, http: 400 },
  NOT_SERIALIZABLE: { class: SerializationError, http: 400 },
  PAYLOAD_TOO_LARGE: { class: PayloadTooLargeError, http: 413 },
  INVALID_MESSAGE: { class: MessageValidationError, http: 400 },
  CHANNEL_MODE_CONFLICT: { class: ChannelModeConflictError, http: 409 },
  NOT_SUBSCRIBED: { class: NotSubscribedError, http: 500 },
  UNKNOWN_ACTOR: { class: UnknownActorError, http: 500 },
  NOT_FOUND: { class: NotFoundError, http: 404 },
  DUPLICATE_ACTOR: { class: DuplicateActorError, http: 500 },
  ID_CONFLICT: { class: ActorIdConflictError, http: 500 },
  NOT_CANCELLABLE: { class: NotCancellableError, http: 500 },
  ACTOR_FAILED: { class: ActorFailedError, http: 500 },
  CANCELLED: { class: ActorCancelledError, http: 500 },
  TIMEOUT: { class: TimeoutError, http: 500 },
  STEP_TIMEOUT: { class: StepTimeoutError, http: 500 },
  NON_RETRYABLE: { class: NonRetryableError, http: 500 },
  STEP_FAILED: { class: StepFailedError, http: 500 },
  NON_DETERMINISM: { class: NonDeterminismError, http: 500 },
  LOCK_LOST: { class: LockLostError, http: 500 },
  SCHEMA_TOO_NEW: { class: SchemaTooNewError, http: 500 },
  SCHEMA_MISSING: { class: SchemaMissingError, http: 503 },
  DATABASE_LOCKED: { class: DatabaseLockedError, http: 500 },
  DATABASE_UNAVAILABLE: { class: DatabaseUnavailableError, http: 503, retryable: true },
  NOT_STARTED: { class: NotStartedError, http: 503 },
  SINK_FAILED: { class: SinkError, http: 500 },
  // POST /events rejections (IngestError)
  INVALID_JSON: { class: IngestError, http: 400 },
  INVALID_CLOUDEVENT: { class: IngestError, http: 400 },
  NOT_A_CLOUDEVENT: { class: IngestError, http: 400 },
  INVALID_ATTRIBUTE: { class: IngestError, http: 400 },
  INVALID_TYPE: { class: IngestError, http: 400 },
  MISSING_SPECVERSION: { class: IngestError, http: 400 },
  MISSING_ATTRIBUTE: { class: IngestError, http: 400 },
  UNSUPPORTED_SPECVERSION: { class: IngestError, http: 400 },
  BATCH_NOT_SUPPORTED: { class: IngestError, http: 415 },
  UNSUPPORTED_MEDIA_TYPE: { class: IngestError, http: 415 },
} as const;

/** Every code troupe raises. */
export type ErrorCode = keyof typeof ERROR_REGISTRY;

// Checked here rather than with `satisfies` on the table: that check would need the classes'
// constructor types, which name ErrorCode, which is the table's keys — a cycle.
const REGISTRY: Readonly<Record<ErrorCode, ErrorSpec>> = ERROR_REGISTRY;

/** The registry row of `code`, or undefined for a code troupe does not raise (a user's, say). */
export function errorSpec(code: string): ErrorSpec | undefined {
  // Own keys only: a recorded code comes from the database and may be "constructor" or "__proto__".
  return Object.hasOwn(REGISTRY, code) ? REGISTRY[code as ErrorCode] : undefined;
}

/** The HTTP status for a code (500 for codes troupe does not raise). */
export function httpStatus(code: string): number {
  return errorSpec(code)?.http ?? 500;
}
