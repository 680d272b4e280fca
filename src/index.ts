export { Troupe } from "./troupe.js";
export type {
  ActorInfo,
  ActorStatus,
  ChannelMode,
  ChannelSummary,
  ChannelsOptions,
  CompensationOutcome,
  CompensationRecord,
  DatabaseLockHolder,
  HistoryEntry,
  ListFilter,
  RecordedError,
  ScheduleInfo,
  ScheduleOptions,
  SendOptions,
  SpawnOptions,
  TroupeEvents,
  TroupeStats,
  WorkerSummary,
} from "./api/types.js";
export { channel, type Channel, type ChannelLike, type Message, type Schema } from "./channels.js";
export { actor, type ActorDefinition, type ActorFn, type ActorOptions } from "./actor.js";
export type {
  ActorContext,
  PublishOptions,
  ReceiveOptions,
  StepOptions,
  TransactionOptions,
  CompensationInfo,
  StepTransaction,
  MessageWriter,
} from "./api/actor-context.js";
export type { AttemptInfo, RetryPolicy } from "./engine/retry.js";
export { ActorRef } from "./ref.js";
export type { TroupeOptions, Logger, LogLevel } from "./options.js";
export type { Duration } from "./duration.js";
export { asyncLocalContext, type ContextCodec } from "./context-propagation.js";
export type { Listener } from "./listeners.js";
export {
  TroupeError,
  type ErrorCode,
  ValidationError,
  SerializationError,
  PayloadTooLargeError,
  MessageValidationError,
  ChannelModeConflictError,
  NotSubscribedError,
  UnknownActorError,
  NotFoundError,
  DuplicateActorError,
  ActorIdConflictError,
  NotCancellableError,
  ActorFailedError,
  ActorCancelledError,
  TimeoutError,
  StepTimeoutError,
  NonRetryableError,
  StepFailedError,
  NonDeterminismError,
  LockLostError,
  SchemaTooNewError,
  SchemaMissingError,
  DatabaseLockedError,
  DatabaseUnavailableError,
  NotStartedError,
  SinkError,
  IngestError,
} from "./api/errors.js";
export type { CloudEvent, CloudEventInput } from "./outbox/cloudevent.js";
export type { OutboxEntry, OutboxStatus } from "./outbox/outbox-entry.js";
export {
  OutboxRelay,
  type OutboxRelayOptions,
  type OutboxRelayEvents,
  type BackoffOptions,
} from "./outbox/relay.js";
export { httpSink, type HttpSinkOptions } from "./outbox/http-sink.js";
export type { OutboxSink, SendInfo } from "./outbox/sink.js";
export { createServer, TroupeServer, type ServerOptions } from "./serve/server.js";
// The stream and projections are Troupe methods (readStream, runProjection, catchUp,
// projectionPosition, resetProjection); their functions take internal stores, so only the
// types are exported.
export type {
  StreamEvent,
  JournalStreamEvent,
  MessageStreamEvent,
  ReadStreamOptions,
  StreamPage,
} from "./stream/event-stream.js";
export { STREAM_START, comparePositions, type StreamPosition } from "./stream/position.js";
export type {
  CatchUpOptions,
  ProjectionOptions,
  ProjectionHandler,
  ProjectionProgress,
  BatchInfo,
} from "./stream/projection.js";
export {
  startDashboard,
  DEFAULT_DASHBOARD_PORT,
  type Dashboard,
  type DashboardOptions,
} from "./dashboard/index.js";
