import { ChannelModeConflictError, type ChannelMode } from "../channels.js";
import type { StoreContext } from "./context.js";
import type { SqlClient } from "./database.js";
import type { DeliveryStore } from "./delivery-store.js";
import type { MessageStore } from "./message-store.js";
import type { SubscriptionStore } from "./subscription-store.js";

export type { DeliveredActor } from "./delivery-store.js";
export type { MessageOrigin } from "./message-store.js";

/** A message from outside actors into one source (the old `channels.publish` input). */
export interface PublishInput {
  source: string;
  data: Buffer;
  metadata: Record<string, unknown>;
  idempotencyKey?: string | undefined;
  /** For a direct message: the target actor (must exist). */
  directTo?: string | undefined;
  /** Ambient context captured by the publisher. */
  context?: Record<string, unknown> | null | undefined;
}

/**
 * Channels: a channel's mode, fixed by its first subscriber. Messages, subscriptions and
 * delivery have their own stores (message-store, subscription-store, delivery-store).
 */
export class ChannelStore {
  /** A channel's mode never changes once set, so known modes are cached. */
  private readonly modes = new Map<string, ChannelMode>();

  constructor(
    private readonly c: StoreContext,
    private readonly parts: {
      messages: MessageStore;
      subscriptions: () => SubscriptionStore;
      delivery: DeliveryStore;
    },
  ) {}

  /** `client`: a transaction to read on (inside a transactional step, PGlite has only its connection). */
  async modeOf(name: string, client: SqlClient = this.c.db): Promise<ChannelMode | null> {
    const known = this.modes.get(name);
    if (known) return known;
    const { rows } = await client.query<{ mode: ChannelMode }>(
      this.c.sql("SELECT mode FROM {schema}.channels WHERE name = $1"),
      [name],
    );
    const mode = rows[0]?.mode ?? null;
    if (mode) this.modes.set(name, mode);
    return mode;
  }

  /** Inside a subscribe's transaction: the first subscriber fixes the mode; another mode is a conflict. */
  async fixMode(tx: SqlClient, name: string, mode: ChannelMode): Promise<void> {
    await tx.query(
      this.c.sql("INSERT INTO {schema}.channels (name, mode) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"),
      [name, mode],
    );
    const { rows } = await tx.query<{ mode: ChannelMode }>(
      this.c.sql("SELECT mode FROM {schema}.channels WHERE name = $1"),
      [name],
    );
    const existing = rows[0]?.mode;
    if (existing && existing !== mode) throw new ChannelModeConflictError(name, existing, mode);
  }

  /*
   * The operations below moved to their own stores; these one-line forwards keep callers
   * outside storage/ (worker, leader loops, execution's subscribe/receive, tests) working
   * until they call storage.messages / storage.subscriptions / storage.delivery directly.
   */

  /** External publish/send of one message (idempotency key honoured). */
  async publish(p: PublishInput): Promise<string> {
    const { ids } = await this.parts.messages.insert(
      {
        to: { source: p.source, directTo: p.directTo ?? null },
        data: p.data,
        metadata: p.metadata,
        idempotencyKey: p.idempotencyKey,
        context: p.context,
      },
      { by: "client" },
    );
    return ids[0]!;
  }

  subscribe(...a: Parameters<SubscriptionStore["subscribe"]>) {
    return this.parts.subscriptions().subscribe(...a);
  }
  unsubscribe(...a: Parameters<SubscriptionStore["unsubscribe"]>) {
    return this.parts.subscriptions().unsubscribe(...a);
  }
  receiveOrWait(...a: Parameters<SubscriptionStore["receiveOrWait"]>) {
    return this.parts.subscriptions().receiveOrWait(...a);
  }
  deliver(...a: Parameters<DeliveryStore["deliver"]>) {
    return this.parts.delivery.deliver(...a);
  }
  pendingSources(...a: Parameters<DeliveryStore["pendingSources"]>) {
    return this.parts.delivery.pendingSources(...a);
  }
  newestId(...a: Parameters<MessageStore["newestId"]>) {
    return this.parts.messages.newestId(...a);
  }
  messagesAfter(...a: Parameters<MessageStore["messagesAfter"]>) {
    return this.parts.messages.messagesAfter(...a);
  }
  deleteRead(...a: Parameters<MessageStore["deleteRead"]>) {
    return this.parts.messages.deleteRead(...a);
  }
}
