/**
 * Troupe's stream methods (readStream, runProjection, catchUp, projectionPosition,
 * resetProjection) over its own storage: the stream functions take internal stores users
 * cannot build, so these are how users reach them.
 */
import { readStream, type ReadStreamOptions, type StreamPage } from "../stream/event-stream.js";
import type { StreamPosition } from "../stream/position.js";
import {
  catchUp,
  projectionPosition,
  resetProjection,
  runProjection,
  type CatchUpOptions,
  type ProjectionOptions,
  type ProjectionProgress,
} from "../stream/projection.js";
import type { ClientDeps } from "./troupe-deps.js";

export class Streams {
  constructor(private readonly c: ClientDeps) {}

  /** See Troupe.readStream. */
  read(opts: ReadStreamOptions): Promise<StreamPage> {
    return readStream(this.c.storage("readStream").stream, opts);
  }

  /** See Troupe.runProjection. */
  run(opts: ProjectionOptions): Promise<ProjectionProgress> {
    return runProjection(this.c.storage("runProjection"), opts);
  }

  /** See Troupe.catchUp. */
  catchUp(opts: CatchUpOptions): Promise<ProjectionProgress> {
    return catchUp(this.c.storage("catchUp"), opts);
  }

  position(name: string): Promise<StreamPosition | null> {
    return projectionPosition(this.c.storage("projectionPosition"), name);
  }

  reset(name: string, position?: StreamPosition): Promise<void> {
    return resetProjection(this.c.storage("resetProjection"), name, position);
  }
}
