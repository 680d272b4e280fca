import type { ActorStore } from "./actor-store.js";
import type { SchemaDb } from "./schema-db.js";
import type { Fence, JournalEntry } from "./rows.js";

/** Process groups (Erlang pg): join/leave are idempotent; finishing an actor removes it from all groups. */
export class GroupStore {
  constructor(
    private readonly c: SchemaDb,
    private readonly actors: ActorStore,
  ) {}

  async join(fence: Fence, entries: readonly JournalEntry[], leaseMs: number, group: string): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await tx.query(
        this.c.sql(
          "INSERT INTO {schema}.group_members (group_name, actor_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ),
        [group, fence.actorId],
      );
    });
  }

  async leave(fence: Fence, entries: readonly JournalEntry[], leaseMs: number, group: string): Promise<void> {
    await this.c.db.transaction(async (tx) => {
      await this.actors.fenceAndInsert(tx, fence, entries, leaseMs);
      await tx.query(
        this.c.sql("DELETE FROM {schema}.group_members WHERE group_name = $1 AND actor_id = $2"),
        [group, fence.actorId],
      );
    });
  }

  async members(group: string): Promise<string[]> {
    const { rows } = await this.c.db.query<{ actor_id: string }>(
      this.c.sql("SELECT actor_id FROM {schema}.group_members WHERE group_name = $1 ORDER BY actor_id"),
      [group],
    );
    return rows.map((r) => r.actor_id);
  }

  /** Every group with at least one member, with its size. */
  async groups(): Promise<{ group: string; members: number }[]> {
    const { rows } = await this.c.db.query<{ group_name: string; n: number }>(
      this.c.sql(
        "SELECT group_name, count(*)::int AS n FROM {schema}.group_members GROUP BY group_name ORDER BY group_name",
      ),
    );
    return rows.map((r) => ({ group: r.group_name, members: Number(r.n) }));
  }

  async groupsOf(actorId: string): Promise<string[]> {
    const { rows } = await this.c.db.query<{ group_name: string }>(
      this.c.sql("SELECT group_name FROM {schema}.group_members WHERE actor_id = $1 ORDER BY group_name"),
      [actorId],
    );
    return rows.map((r) => r.group_name);
  }
}
