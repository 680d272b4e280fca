/**
 * Wakeups are latency hints, never the source of truth: a lost one only costs a poll
 * interval. They are published after the writing transaction commits and carry a kind
 * and a key (actor id or channel name), never a payload.
 */
export type WakeupKind =
  | "actor" // an actor became runnable
  | "channel" // a channel (message source) has new messages
  | "finished" // an actor reached a final status
  | "cancel" // cancellation was requested for an actor
  | "ephemeral"; // a message on a non-durable channel: the payload travels in the wakeup itself

export interface Wakeup {
  kind: WakeupKind;
  key: string;
  /** Only for "ephemeral": the encoded message. */
  payload?: Uint8Array;
}

export interface Wakeups {
  start(): Promise<void>;
  /** Fire-and-forget; failures are reported through onError and otherwise ignored. */
  publish(wakeups: readonly Wakeup[]): void;
  /** Every wakeup published by any worker sharing this schema (including this one). */
  onWakeup(handler: (w: Wakeup) => void): void;
  /** Called after the transport reconnected: hints may have been missed, do a full check. */
  onReconnect(handler: () => void): void;
  stop(): Promise<void>;
}
