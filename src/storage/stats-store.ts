import type { SchemaDb } from "./schema-db.js";
import type { ActorStatus } from "./rows.js";

/** Which actors a stats read covers: one actor type (or all), updated/finished since (or ever). */
export interface StatsScope {
  actor: string | null;
  since: Date | null;
}

/** Run times of the completed actors in a scope. */
export interface Completions {
  /** Run time (started to finished), ms; null when none completed. */
  p50Ms: number | null;
  p95Ms: number | null;
  count: number;
  /** Seconds from `since` (or the first completion) to the last completion; 0 when none. */
  spanSec: number;
}

const ALL_STATUSES: ActorStatus[] = [
  "running",
  "waiting",
  "completed",
  "failed",
  "cancelled",
  "compensating",
];

const BY_STATUS = `
  SELECT status, count(*)::int AS n FROM {schema}.actors
   WHERE ($1::text IS NULL OR actor = $1) AND ($2::timestamptz IS NULL OR updated_at >= $2)
   GROUP BY status`;

const COMPLETIONS = `
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
         count(*)::int AS n,
         extract(epoch FROM (max(finished_at) - COALESCE($2::timestamptz, min(finished_at)))) AS span
    FROM (SELECT finished_at, extract(epoch FROM (finished_at - started_at)) * 1000 AS ms
            FROM {schema}.actors
           WHERE status = 'completed' AND finished_at IS NOT NULL
             AND ($1::text IS NULL OR actor = $1) AND ($2::timestamptz IS NULL OR finished_at >= $2)) x`;

/** Aggregates over the actors table for Troupe.stats(). */
export class StatsStore {
  constructor(private readonly c: SchemaDb) {}

  /** Actors per status (every status present, 0 when none), by last update in the scope. */
  async countByStatus(scope: StatsScope): Promise<Record<ActorStatus, number>> {
    const { rows } = await this.c.db.query<{ status: ActorStatus; n: number }>(this.c.sql(BY_STATUS), [
      scope.actor,
      scope.since,
    ]);
    const out = Object.fromEntries(ALL_STATUSES.map((s) => [s, 0])) as Record<ActorStatus, number>;
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  /** Percentiles, count and time span of the completions in the scope. */
  async completions(scope: StatsScope): Promise<Completions> {
    const { rows } = await this.c.db.query<{
      p50: number | null;
      p95: number | null;
      n: number;
      span: number | null;
    }>(this.c.sql(COMPLETIONS), [scope.actor, scope.since]);
    const agg = rows[0];
    return {
      p50Ms: agg?.p50 == null ? null : Number(agg.p50),
      p95Ms: agg?.p95 == null ? null : Number(agg.p95),
      count: Number(agg?.n ?? 0),
      spanSec: agg?.span ? Number(agg.span) : 0,
    };
  }
}
