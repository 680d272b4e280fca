import { Redis, type RedisOptions } from "ioredis";
import { Packr } from "msgpackr";
import type { Wakeup, WakeupKind, Wakeups } from "./wakeups.js";

const KINDS: WakeupKind[] = ["actor", "channel", "finished", "cancel", "ephemeral"];
const packr = new Packr({ useRecords: false });

/** Capped exponential backoff with full jitter, so a fleet does not reconnect in lockstep. */
export function reconnectDelay(attempt: number, capMs = 5000): number {
  const ceiling = Math.min(capMs, 50 * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * Redis pub/sub fan-out: every worker subscribes (on its own dedicated connection) to one
 * Redis channel per troupe installation (`troupe:<schema>:<installation id>:wake`). Frames are msgpack [kindIndex, key, payload|null, …].
 */
export class RedisWakeups implements Wakeups {
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private ownsPub = false;
  private handlers: ((w: Wakeup) => void)[] = [];
  private reconnectHandlers: (() => void)[] = [];
  private readonly topic: string;

  constructor(
    private readonly source: string | Redis,
    scope: string,
    private readonly onError: (err: Error) => void,
  ) {
    this.topic = `troupe:${scope}:wake`;
  }

  async start(): Promise<void> {
    if (this.sub) return;
    const options: RedisOptions = {
      retryStrategy: (attempt) => reconnectDelay(attempt),
      maxRetriesPerRequest: 1,
      // A hint that cannot be sent now is worthless later: fail fast, polling covers it.
      enableOfflineQueue: false,
      lazyConnect: true,
    };
    if (typeof this.source === "string") {
      this.pub = new Redis(this.source, options);
      this.ownsPub = true;
      this.sub = new Redis(this.source, { ...options, enableOfflineQueue: true });
    } else {
      this.pub = this.source;
      this.sub = this.source.duplicate({ ...options, enableOfflineQueue: true });
    }
    this.pub.on("error", (e: Error) => this.onError(e));
    this.sub.on("error", (e: Error) => this.onError(e));
    this.sub.on("messageBuffer", (_channel: Buffer, frame: Buffer) => this.dispatch(frame));
    this.sub.on("ready", () => {
      // Subscribed before, so this is a reconnect: ioredis re-subscribes by itself, but what
      // was published while we were away is lost, so re-check everything.
      if (this.subscribed) this.recheck();
      // Never subscribed (Redis was down at start; ioredis only re-subscribes channels whose
      // subscribe was acknowledged): subscribe now; subscribeTopic re-checks once started.
      else void this.subscribeTopic();
    });
    // Redis being down at start is not fatal: polling keeps troupe correct and ioredis keeps retrying.
    if (this.ownsPub) this.pub.connect().catch((e: Error) => this.onError(e));
    await this.sub.connect().catch((e: Error) => this.onError(e));
    await this.subscribeTopic();
    this.started = true;
  }

  /** start() has made its own subscribe attempt: a later first subscribe must re-check. */
  private started = false;
  private subscribed = false;
  private subscribing: Promise<void> | undefined;

  private recheck(): void {
    for (const h of this.reconnectHandlers) h();
  }

  private subscribeTopic(): Promise<void> {
    const sub = this.sub;
    if (!sub || this.subscribed) return Promise.resolve();
    this.subscribing ??= sub
      .subscribe(this.topic)
      .then(() => {
        this.subscribed = true;
        if (this.started) this.recheck();
      })
      .catch((e: Error) => this.onError(e))
      .finally(() => {
        this.subscribing = undefined;
      });
    return this.subscribing;
  }

  publish(wakeups: readonly Wakeup[]): void {
    if (!this.pub || wakeups.length === 0) return;
    const flat: (number | string | Uint8Array | null)[] = [];
    for (const w of wakeups) flat.push(KINDS.indexOf(w.kind), w.key, w.payload ?? null);
    const frame = packr.pack(flat);
    // Our own subscriber hears the echo only while both connections are up; otherwise this
    // process hands its hints to itself (other processes fall back to polling).
    const echoed = this.pub.status === "ready" && this.subscribed && this.sub?.status === "ready";
    if (this.pub.status === "ready")
      this.pub.publish(this.topic, frame).catch((e: Error) => {
        this.onError(e);
        if (echoed) this.dispatch(frame);
      });
    if (!echoed) this.dispatch(frame);
  }

  private dispatch(frame: Buffer): void {
    let flat: unknown;
    try {
      flat = packr.unpack(frame);
    } catch {
      return; // not ours
    }
    if (!Array.isArray(flat)) return;
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const kind = KINDS[flat[i] as number];
      const key = flat[i + 1];
      const payload = flat[i + 2];
      if (!kind || typeof key !== "string") continue;
      const w: Wakeup = payload instanceof Uint8Array ? { kind, key, payload } : { kind, key };
      for (const h of this.handlers) h(w);
    }
  }

  onWakeup(handler: (w: Wakeup) => void): void {
    this.handlers.push(handler);
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  async stop(): Promise<void> {
    const sub = this.sub;
    const pub = this.pub;
    this.sub = undefined;
    this.pub = undefined;
    this.subscribed = false;
    this.started = false;
    if (sub) sub.disconnect();
    if (pub && this.ownsPub) pub.disconnect();
  }
}
