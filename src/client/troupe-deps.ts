import type { ContextPropagation } from "../context-propagation.js";
import type { Storage } from "../storage/storage.js";
import type { Wakeup } from "../wakeups/wakeups.js";
import type { ActorRegistry } from "./registry.js";

/**
 * What the client operations (Troupe's methods outside actors) need from their Troupe.
 * The Troupe builds one at construction; storage and wakeups exist only while it is started.
 */
export interface ClientDeps {
  /** The started storage; NotStartedError naming `what` before start() and once stopping. */
  storage(what: string): Storage;
  /** Publishes wakeups after a commit (nothing while the transport is down or not started). */
  wake(wakeups: readonly Wakeup[]): void;
  readonly maxPayloadBytes: number;
  readonly propagation: ContextPropagation;
  readonly actors: ActorRegistry;
  /** Emits the Troupe's "actor:cancelled" event (a cancel that finished the actor at once). */
  cancelled(actorId: string, reason: string | null): void;
}
