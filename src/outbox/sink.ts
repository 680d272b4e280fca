import type { CloudEvent } from "./cloudevent.js";

/** What a sink learns about the send besides the event. */
export interface SendInfo {
  /** 1 for the first attempt, counted across relays and restarts. */
  attempt: number;
  /** Aborted when the relay is stopped forcefully; pass it to fetch/sockets. */
  signal: AbortSignal;
}

/**
 * Where the outbox relay delivers events. Resolving = delivered; throwing = failed (retried
 * with backoff). Throw a `SinkError` with `permanent: true` to dead-letter at once, or with
 * `retryAfterMs` to wait at least that long. Delivery is at-least-once: a sink (or its
 * receiver) should tolerate a repeat of an event id.
 */
export interface OutboxSink {
  send(event: CloudEvent, info: SendInfo): Promise<void>;
}
