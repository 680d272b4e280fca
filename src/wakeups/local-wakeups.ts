import { EventEmitter } from "eventemitter3";
import type { Wakeup, Wakeups } from "./wakeups.js";

/** One bus per scope per process, so several Troupes in a process sharing a database hear each other. */
const buses = new Map<string, { bus: EventEmitter; users: number }>();

/** In-process wakeups (eventemitter3): the default when no Redis is configured. */
export class LocalWakeups implements Wakeups {
  private handlers: ((w: Wakeup) => void)[] = [];
  private readonly listener = (batch: readonly Wakeup[]) => {
    for (const w of batch) for (const h of this.handlers) h(w);
  };
  private started = false;

  constructor(private readonly scope: string) {}

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    let entry = buses.get(this.scope);
    if (!entry) {
      entry = { bus: new EventEmitter(), users: 0 };
      buses.set(this.scope, entry);
    }
    entry.users++;
    entry.bus.on("wake", this.listener);
  }

  publish(wakeups: readonly Wakeup[]): void {
    if (wakeups.length === 0) return;
    const entry = buses.get(this.scope);
    // Deliver on a later tick: the publisher's own code must never run inside its caller's stack.
    if (entry) queueMicrotask(() => entry.bus.emit("wake", wakeups));
  }

  onWakeup(handler: (w: Wakeup) => void): void {
    this.handlers.push(handler);
  }

  onReconnect(): void {
    // never disconnects
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    const entry = buses.get(this.scope);
    if (!entry) return;
    entry.bus.off("wake", this.listener);
    if (--entry.users === 0) buses.delete(this.scope);
  }
}
