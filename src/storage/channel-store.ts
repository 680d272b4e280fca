import { ChannelModeConflictError } from "../api/errors.js";
import type { ChannelMode } from "../api/types.js";
import type { SchemaDb } from "./schema-db.js";
import type { SqlClient } from "./database.js";

/**
 * Channels: a channel's mode, fixed by its first subscriber. Messages, subscriptions and
 * delivery have their own stores (message-store, subscription-store, delivery-store).
 */
export class ChannelStore {
  /** A channel's mode never changes once set, so known modes are cached. */
  private readonly modes = new Map<string, ChannelMode>();

  constructor(private readonly c: SchemaDb) {}

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
}
