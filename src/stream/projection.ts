/**
 * Projections: named consumers of the event stream that keep their position in
 * `stream_positions`, for building read models.
 *
 * At least once: a batch is handed to `handle`, and its position is stored only after
 * `handle` returned. A crash (or a throw) in between replays the batch on the next run, so
 * handlers must be idempotent; events carry comparable positions for that (a read model can
 * keep the last position it applied and skip anything at or below it, or store it in the same
 * transaction as its own writes). A stored position never moves back, except by
 * `resetProjection`.
 */
import { optionsArg } from "../arguments.js";
import { toMillis, type Duration } from "../duration.js";
import { ValidationError } from "../api/errors.js";
import { checkName } from "../names.js";
import type { ProjectionStore } from "../storage/projection-store.js";
import type { StreamStore } from "../storage/stream-store.js";
import { DEFAULT_READ_LIMIT, checkGrace, checkLimit, readStream, type StreamEvent } from "./event-stream.js";
import { STREAM_START, parsePosition, type StreamPosition } from "./position.js";
import { startTimeout } from "../timers.js";

export interface BatchInfo {
  /** The projection's name. */
  name: string;
  /** The stored position the batch was read after. */
  from: StreamPosition;
  /** The position stored once `handle` returns (the batch's last event). */
  to: StreamPosition;
}

export type ProjectionHandler = (events: StreamEvent[], batch: BatchInfo) => unknown;

export interface CatchUpOptions {
  /** The projection's name: its position is stored under it. */
  name: string;
  /** Applies a batch of events (in stream order) to the read model. */
  handle: ProjectionHandler;
  /** Events per batch (default 100, at most 10,000). */
  batchSize?: number;
  /** See ReadStreamOptions.foreignTxGrace (default "5s"). */
  foreignTxGrace?: Duration | null;
}

export interface ProjectionOptions extends CatchUpOptions {
  /** How long to wait before looking again once caught up (default "1s"). */
  pollInterval?: Duration;
  /** Aborting stops the projection after the batch in hand is handled and saved. */
  signal?: AbortSignal;
}

/** What projections read and write: the stream, and their stored positions. */
export interface ProjectionStorage {
  readonly stream: StreamStore;
  readonly projections: ProjectionStore;
}

export interface ProjectionProgress {
  /** Events handed to `handle` by this call. */
  events: number;
  batches: number;
  /** The stored position when the call returned. */
  position: StreamPosition;
}

function checkProjectionName(name: unknown): string {
  return checkName(name, "projection name");
}

/** The stored position of a projection, or null when it never stored one. */
export async function projectionPosition(
  storage: ProjectionStorage,
  name: string,
): Promise<StreamPosition | null> {
  checkProjectionName(name);
  return storage.projections.position(name);
}

/** Sets a projection's position, backwards too (default: the start, to rebuild its read model). */
export async function resetProjection(
  storage: ProjectionStorage,
  name: string,
  position: StreamPosition = STREAM_START,
): Promise<void> {
  checkProjectionName(name);
  parsePosition(position, "resetProjection position");
  await storage.projections.reset(name, position);
}

interface Checked {
  name: string;
  handle: ProjectionHandler;
  batchSize: number;
  foreignTxGrace: Duration | null;
}

function checkOptions(options: CatchUpOptions, what: string): Checked {
  if (options === undefined) throw new ValidationError(`${what} options must be an object`);
  const opts = optionsArg(options, `${what} options`);
  const name = checkProjectionName(opts.name);
  if (typeof opts.handle !== "function") throw new ValidationError(`${what}: handle must be a function`);
  const batchSize = checkLimit(opts.batchSize, `${what} batchSize`, DEFAULT_READ_LIMIT);
  const graceMs = checkGrace(opts.foreignTxGrace, `${what} foreignTxGrace`);
  return { name, handle: opts.handle, batchSize, foreignTxGrace: graceMs };
}

async function load(storage: ProjectionStorage, name: string): Promise<StreamPosition> {
  const stored = (await projectionPosition(storage, name)) ?? STREAM_START;
  parsePosition(stored, `stored position of projection "${name}"`);
  return stored;
}

/** One batch: read after `from`, handle, then store. Returns the position to go on from. */
async function step(
  storage: ProjectionStorage,
  o: Checked,
  from: StreamPosition,
): Promise<{ position: StreamPosition; events: number; caughtUp: boolean }> {
  const page = await readStream(storage.stream, {
    after: from,
    limit: o.batchSize,
    foreignTxGrace: o.foreignTxGrace,
  });
  if (page.events.length === 0) return { position: from, events: 0, caughtUp: true };
  await o.handle(page.events, { name: o.name, from, to: page.position });
  const stored = await storage.projections.advance(o.name, page.position);
  return { position: stored, events: page.events.length, caughtUp: page.caughtUp };
}

/**
 * Handles everything readable now, batch by batch from the stored position, then returns.
 * If `handle` throws, it rejects with that error; the failed batch's position is not stored.
 */
export async function catchUp(storage: ProjectionStorage, opts: CatchUpOptions): Promise<ProjectionProgress> {
  const o = checkOptions(opts, "catchUp");
  let position = await load(storage, o.name);
  let events = 0;
  let batches = 0;
  for (;;) {
    const r = await step(storage, o, position);
    position = r.position;
    if (r.events > 0) {
      events += r.events;
      batches++;
    }
    if (r.caughtUp) return { events, batches, position };
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      timer.clear();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = startTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Follows the stream until `signal` aborts: handles batches from the stored position, and
 * polls every `pollInterval` once caught up. Resolves after the abort (the batch in hand is
 * finished and stored first); rejects with the first error (from `handle` or the database),
 * leaving the last stored position in place: call it again to resume.
 */
export async function runProjection(
  storage: ProjectionStorage,
  opts: ProjectionOptions,
): Promise<ProjectionProgress> {
  const o = checkOptions(opts, "runProjection");
  const pollMs = toMillis(opts.pollInterval ?? "1s", "runProjection pollInterval");
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new ValidationError("runProjection: signal must be an AbortSignal");
  let position = await load(storage, o.name);
  let events = 0;
  let batches = 0;
  while (!signal?.aborted) {
    const r = await step(storage, o, position);
    position = r.position;
    if (r.events > 0) {
      events += r.events;
      batches++;
    }
    if (r.caughtUp) await pause(pollMs, signal);
  }
  return { events, batches, position };
}
