import type { Message } from "./channels.js";
import { decode } from "./codec.js";
import { readEphemeral } from "./messaging/ephemeral.js";
import type { Storage } from "./storage/storage.js";
import type { Wakeup } from "./wakeups/wakeups.js";

export type Listener<T = unknown> = (message: Message<T>) => void | Promise<void>;

/**
 * In-memory listeners for code outside actors (a WebSocket gateway, a UI). Fed by the
 * same wakeups as the workers, at most once: a durable channel is read from the last id
 * this process saw; a non-durable channel's messages arrive inside the wakeup itself.
 * A listener that is not running when a message comes never sees it.
 */
export class Listeners {
  private readonly byChannel = new Map<
    string,
    { handlers: Set<Listener<any>>; lastId: Promise<string> | string; reading: boolean; again: boolean }
  >();

  constructor(
    private readonly storage: Storage,
    private readonly onError: (err: unknown) => void,
  ) {}

  listen<T>(name: string, handler: Listener<T>): () => void {
    let entry = this.byChannel.get(name);
    if (!entry) {
      entry = { handlers: new Set(), lastId: this.newestId(name), reading: false, again: false };
      this.byChannel.set(name, entry);
    }
    entry.handlers.add(handler as Listener<any>);
    return () => {
      const e = this.byChannel.get(name);
      if (!e) return;
      e.handlers.delete(handler as Listener<any>);
      if (e.handlers.size === 0) this.byChannel.delete(name);
    };
  }

  /**
   * Where a new listener starts. Handled at once (a database outage here must not be an
   * unhandled rejection); readNew() awaits it and, if it failed, asks again.
   */
  private newestId(name: string): Promise<string> {
    const p = this.storage.messages.newestId(name);
    p.catch(() => {});
    return p;
  }

  onWakeup(w: Wakeup): void {
    const entry = this.byChannel.get(w.key);
    if (!entry) return;
    if (w.kind === "ephemeral" && w.payload) {
      this.dispatch(entry.handlers, readEphemeral(w.payload));
    } else if (w.kind === "channel") {
      void this.readNew(w.key);
    }
  }

  private async readNew(name: string): Promise<void> {
    const entry = this.byChannel.get(name);
    if (!entry) return;
    if (entry.reading) {
      entry.again = true;
      return;
    }
    entry.reading = true;
    try {
      do {
        entry.again = false;
        let after: string;
        try {
          after = await entry.lastId;
        } catch (err) {
          entry.lastId = this.newestId(name); // the start position was never read: from now on
          throw err;
        }
        const page = await this.storage.messages.messagesAfter(name, after, 500);
        if (page.length === 0) break;
        entry.lastId = page.at(-1)!.id; // advanced before handling: at most once
        for (const m of page) this.dispatch(entry.handlers, decode<Message<unknown>>(m.env));
        if (page.length === 500) entry.again = true;
      } while (entry.again);
    } catch (err) {
      this.onError(err);
    } finally {
      entry.reading = false;
    }
  }

  private dispatch(handlers: Set<Listener<any>>, msg: Message<unknown>): void {
    for (const h of [...handlers]) {
      try {
        const r = h(msg);
        if (r && typeof r.catch === "function") r.catch((e: unknown) => this.onError(e));
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
