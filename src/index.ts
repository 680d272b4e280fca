export { Troupe, type SpawnOptions, type TroupeEvents } from "./troupe.js";
export { actor, type ActorDefinition, type ActorFn, type ActorOptions } from "./actor.js";
export type { ActorContext, StepOptions, StepTransaction } from "./engine/context.js";
export type { AttemptInfo, RetryPolicy } from "./engine/retry.js";
export { ActorRef, ActorCancelledError, type ActorInfo } from "./ref.js";
export type { ActorStatus } from "./storage/rows.js";
export type { TroupeOptions, Logger, LogLevel } from "./options.js";
export type { Duration } from "./duration.js";
export {
  TroupeError,
  ValidationError,
  SerializationError,
  PayloadTooLargeError,
  UnknownActorError,
  NotFoundError,
  DuplicateActorError,
  ActorIdConflictError,
  TimeoutError,
  StepTimeoutError,
  NonDeterminismError,
  LockLostError,
  SchemaTooNewError,
  SchemaMissingError,
  NotStartedError,
  ActorFailedError,
  NonRetryableError,
  type RecordedError,
} from "./errors.js";
