/**
 * Read models for the operator tools (the dashboard, `troupe serve`'s readiness probe):
 * what the rest of the API does not offer — channels with their subscribers and backlog,
 * the worker registry with the leader. Each is one statement, so the numbers it returns come
 * from one snapshot; the same SQL runs on PostgreSQL and PGlite.
 */
import type { ChannelMode, ChannelSummary, WorkerSummary } from "../api/types.js";
import type { SchemaDb } from "./schema-db.js";
import { LEADER_LOCK } from "./leader-lock-store.js";
import { broadcastPending, unclaimedPending } from "./sql/pending.js";

// Every lookup into messages goes through an index: (channel, id), or its unclaimed part.
// The pending predicate is sql/pending.ts's. A direct subscription's source is its own
// mailbox (mailbox.ts: the key is injective), so an unclaimed direct message there is one
// for that subscriber (direct_to = s.actor_id), as delivery reads it.
const CHANNELS = `
  WITH ch AS (
    SELECT name, mode FROM {schema}.channels
     WHERE $2::text IS NULL OR name > $2
     ORDER BY name LIMIT $1),
  subs AS (
    SELECT s.channel, count(*)::int AS subscribers, count(s.wait_seq)::int AS waiting,
           min(s.cursor) FILTER (WHERE s.mode = 'broadcast') AS min_cursor
      FROM {schema}.subscriptions s JOIN ch ON ch.name = s.channel
     GROUP BY s.channel),
  bcast AS (
    SELECT ch.name, count(m.id)::int AS backlog, min(m.published_at) AS oldest
      FROM ch JOIN subs ON subs.channel = ch.name
      JOIN {schema}.messages m ON ${broadcastPending("m", "ch.name", "subs.min_cursor")}
     WHERE ch.mode = 'broadcast'
     GROUP BY ch.name),
  bcast_behind AS (
    SELECT s.channel AS name, count(*)::int AS behind
      FROM {schema}.subscriptions s JOIN ch ON ch.name = s.channel AND ch.mode = 'broadcast'
     WHERE s.mode = 'broadcast'
       AND EXISTS (SELECT 1 FROM {schema}.messages m
                    WHERE ${broadcastPending("m", "s.source", "s.cursor")})
     GROUP BY s.channel),
  comp AS (
    SELECT ch.name, count(m.id)::int AS backlog, min(m.published_at) AS oldest
      FROM ch JOIN {schema}.messages m
        ON ${unclaimedPending("m", "ch.name", { known: "competing" })}
     WHERE ch.mode = 'competing'
     GROUP BY ch.name),
  dir AS (
    SELECT s.channel AS name, count(m.id)::int AS backlog, min(m.published_at) AS oldest,
           count(DISTINCT s.actor_id)::int AS behind
      FROM {schema}.subscriptions s JOIN ch ON ch.name = s.channel AND ch.mode = 'direct'
      JOIN {schema}.messages m
        ON ${unclaimedPending("m", "s.source", { known: "direct" })}
     WHERE s.mode = 'direct'
     GROUP BY s.channel)
  SELECT ch.name, ch.mode,
         COALESCE(subs.subscribers, 0) AS subscribers,
         COALESCE(subs.waiting, 0) AS waiting,
         COALESCE(b.backlog, c.backlog, d.backlog, 0) AS backlog,
         COALESCE(b.oldest, c.oldest, d.oldest) AS oldest,
         CASE ch.mode WHEN 'broadcast' THEN COALESCE(bb.behind, 0)
                      WHEN 'direct' THEN COALESCE(d.behind, 0) END AS behind
    FROM ch
    LEFT JOIN subs ON subs.channel = ch.name
    LEFT JOIN bcast b ON b.name = ch.name
    LEFT JOIN bcast_behind bb ON bb.name = ch.name
    LEFT JOIN comp c ON c.name = ch.name
    LEFT JOIN dir d ON d.name = ch.name
   ORDER BY ch.name`;

interface ChannelRow {
  name: string;
  mode: ChannelMode;
  subscribers: number | string;
  waiting: number | string;
  backlog: number | string;
  oldest: Date | string | null;
  behind: number | string | null;
}

const WORKERS = `
  SELECT w.id, w.hostname, w.pid, w.concurrency, w.started_at, w.heartbeat_at,
         (extract(epoch FROM (now() - w.heartbeat_at)) * 1000)::float8 AS age_ms,
         (l.owner = w.id AND l.expires_at > now()) AS leader
    FROM {schema}.workers w
    LEFT JOIN {schema}.system_locks l ON l.name = $1
   ORDER BY w.started_at, w.id`;

interface WorkerRow {
  id: string;
  hostname: string;
  pid: number;
  concurrency: number;
  started_at: Date | string;
  heartbeat_at: Date | string;
  age_ms: number | string;
  leader: boolean | null;
}

const toDate = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

export class ReadModelStore {
  constructor(private readonly c: SchemaDb) {}

  /**
   * Channels (those with a mode, i.e. subscribed to at least once), by name, after `after`
   * (keyset pagination), at most `limit`. `nextCursor` is the last name when there may be more.
   */
  async channels(opts: {
    limit: number;
    after?: string | undefined;
  }): Promise<{ items: ChannelSummary[]; nextCursor?: string }> {
    const { rows } = await this.c.db.query<ChannelRow>(this.c.sql(CHANNELS), [
      opts.limit + 1,
      opts.after ?? null,
    ]);
    const items = rows.slice(0, opts.limit).map((r): ChannelSummary => ({
      name: r.name,
      mode: r.mode,
      subscribers: Number(r.subscribers),
      waiting: Number(r.waiting),
      backlog: Number(r.backlog),
      oldestBacklogAt: toDate(r.oldest),
      behind: r.behind === null ? null : Number(r.behind),
    }));
    const last = items.at(-1);
    return rows.length > opts.limit && last ? { items, nextCursor: last.name } : { items };
  }

  /** The worker registry (a killed worker's row stays: its heartbeat ages). */
  async workers(): Promise<WorkerSummary[]> {
    const { rows } = await this.c.db.query<WorkerRow>(this.c.sql(WORKERS), [LEADER_LOCK]);
    return rows.map((r) => ({
      id: r.id,
      hostname: r.hostname,
      pid: Number(r.pid),
      concurrency: Number(r.concurrency),
      startedAt: new Date(r.started_at),
      heartbeatAt: new Date(r.heartbeat_at),
      heartbeatAgeMs: Math.max(0, Math.round(Number(r.age_ms))),
      leader: r.leader === true,
    }));
  }
}
