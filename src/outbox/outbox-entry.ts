/**
 * What the outbox holds, as the API shows it (`troupe.outboxEvent()`, `outboxDeadLetters()`, the
 * relay's sink), and the checks on the event ids the API takes. The rows themselves are
 * read and written by src/storage/outbox-store.ts.
 */
import { ValidationError } from "../api/errors.js";
import type { CloudEvent } from "./cloudevent.js";

export type OutboxStatus = "pending" | "processing" | "sent" | "dead";

/** One outbox row, with its event in the CloudEvents JSON format. */
export interface OutboxEntry {
  /** The row's id (internal, increasing). */
  outboxId: string;
  event: CloudEvent;
  status: OutboxStatus;
  /** Sends attempted so far (a claim counts as one). */
  attempts: number;
  nextAttemptAt: Date;
  lockedBy: string | null;
  lockedAt: Date | null;
  lastError: string | null;
  /** The emitting actor, when emitted from inside one. */
  actorId: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

/** The default `source` outside actors. Inside an actor it is `troupe://<actor name>/<actor id>`. */
export const DEFAULT_SOURCE = "troupe://troupe";

/** A CloudEvent id as the outbox stores it (emit checks ids the same way: at most 255, no control characters). */
export function checkEventId(id: unknown, what: string): string {
  if (typeof id !== "string" || id.length === 0 || id.length > 255)
    throw new ValidationError(`${what} must be a non-empty string of at most 255 characters`);
  if (/\p{Cc}|\p{Cs}/u.test(id))
    throw new ValidationError(`${what} contains a control character or a lone surrogate`);
  return id;
}

export function checkIds(ids: readonly string[], what: string): string[] {
  if (!Array.isArray(ids)) throw new ValidationError(`${what} must be an array of ids or "all"`);
  if (ids.length > 10_000) throw new ValidationError(`${what}: at most 10000 ids at a time`);
  for (const id of ids) checkEventId(id, `${what}: an id`);
  return [...ids];
}
