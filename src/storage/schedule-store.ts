import { MS, type SchemaDb } from "./schema-db.js";
import { actorFromRow, type ActorRow } from "./rows.js";

export interface ScheduleRow {
  name: string;
  actor: string;
  input: Buffer;
  cron: string | null;
  everyMs: number | null;
  maxIntervalMs: number | null;
  backoffFactor: number;
  currentIntervalMs: number | null;
  nextRunAt: Date | null;
  lastActorId: string | null;
  runs: number;
}

function fromRow(r: Record<string, any>): ScheduleRow {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    name: r.name,
    actor: r.actor,
    input: Buffer.from(r.input as Uint8Array),
    cron: r.cron ?? null,
    everyMs: num(r.every_ms),
    maxIntervalMs: num(r.max_interval_ms),
    backoffFactor: Number(r.backoff_factor),
    currentIntervalMs: num(r.current_interval_ms),
    nextRunAt: r.next_run_at ? new Date(r.next_run_at as string) : null,
    lastActorId: r.last_actor_id ?? null,
    runs: Number(r.runs),
  };
}

export class ScheduleStore {
  constructor(private readonly c: SchemaDb) {}

  async upsert(s: Omit<ScheduleRow, "lastActorId" | "runs" | "currentIntervalMs">): Promise<ScheduleRow> {
    const { rows } = await this.c.db.query(
      this.c.sql(`
        INSERT INTO {schema}.schedules (name, actor, input, cron, every_ms, max_interval_ms, backoff_factor, current_interval_ms, next_run_at, runs)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $5, $8,
                -- a name used before keeps counting, so run ids <name>#<n> never collide with old runs
                (SELECT COALESCE(max(substring(id FROM length($1) + 2)::int), 0) FROM {schema}.actors
                  WHERE starts_with(id, $1 || '#') AND substring(id FROM length($1) + 2) ~ '^[0-9]{1,9}$'))
        ON CONFLICT (name) DO UPDATE SET actor = EXCLUDED.actor, input = EXCLUDED.input, cron = EXCLUDED.cron,
               every_ms = EXCLUDED.every_ms, max_interval_ms = EXCLUDED.max_interval_ms, backoff_factor = EXCLUDED.backoff_factor,
               current_interval_ms = EXCLUDED.every_ms,
               -- a run in progress keeps going; otherwise the new timing applies now
               next_run_at = CASE WHEN {schema}.schedules.next_run_at IS NULL THEN NULL ELSE EXCLUDED.next_run_at END,
               updated_at = now()
        RETURNING *`),
      [s.name, s.actor, s.input, s.cron, s.everyMs, s.maxIntervalMs, s.backoffFactor, s.nextRunAt],
    );
    return fromRow(rows[0]!);
  }

  async remove(name: string): Promise<boolean> {
    const { rowCount } = await this.c.db.query(this.c.sql("DELETE FROM {schema}.schedules WHERE name = $1"), [
      name,
    ]);
    return rowCount > 0;
  }

  async list(): Promise<ScheduleRow[]> {
    const { rows } = await this.c.db.query(this.c.sql("SELECT * FROM {schema}.schedules ORDER BY name"));
    return rows.map(fromRow);
  }

  /**
   * Starts the runs that are due, one transaction per schedule: the run's actor row is
   * inserted with a deterministic id (<name>#<n>), so a retried tick cannot start it twice.
   */
  async startDue(limit: number): Promise<string[]> {
    return this.c.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        this.c.sql(`
          WITH due AS (
            SELECT * FROM {schema}.schedules WHERE next_run_at <= now() ORDER BY next_run_at LIMIT $1 FOR UPDATE SKIP LOCKED),
          upd AS (
            UPDATE {schema}.schedules s SET runs = s.runs + 1, last_actor_id = s.name || '#' || (s.runs + 1),
                   next_run_at = NULL, updated_at = now()
              FROM due WHERE s.name = due.name
            RETURNING s.last_actor_id AS id, s.actor, s.input)
          INSERT INTO {schema}.actors (id, actor, status, input, input_json)
          SELECT id, actor, 'running', input,
                 CASE WHEN get_byte(input, 0) = 1 THEN convert_from(substring(input FROM 2), 'UTF8')::jsonb END
            FROM upd
          ON CONFLICT (id) DO NOTHING
          RETURNING id`),
        [limit],
      );
      return rows.map((r) => r.id);
    });
  }

  /** Schedules whose run has finished (or was removed by retention), with that run. */
  async finishedRuns(limit: number): Promise<{ schedule: ScheduleRow; run: ActorRow | null }[]> {
    const { rows } = await this.c.db.query(
      this.c.sql(`
        SELECT s.*, row_to_json(a.*) AS run FROM {schema}.schedules s
          LEFT JOIN {schema}.actors a ON a.id = s.last_actor_id
         WHERE s.next_run_at IS NULL AND (a.id IS NULL OR a.status IN ('completed','failed','cancelled'))
         LIMIT $1`),
      [limit],
    );
    return rows.map((r) => ({
      schedule: fromRow(r),
      run: r.run ? actorFromJson(r.run as Record<string, unknown>) : null,
    }));
  }

  async setNext(
    name: string,
    lastActorId: string | null,
    intervalMs: number | null,
    next: NextRun,
  ): Promise<void> {
    const at = "at" in next;
    await this.c.db.query(
      this.c.sql(`UPDATE {schema}.schedules
                     SET next_run_at = ${at ? "$3::timestamptz" : `now() + ${MS("$3")}`},
                         current_interval_ms = $4, updated_at = now()
                   WHERE name = $1 AND next_run_at IS NULL AND last_actor_id IS NOT DISTINCT FROM $2`),
      [name, lastActorId, at ? next.at.toISOString() : next.delayMs, intervalMs],
    );
  }
}

/** A cron run's absolute time, or an interval's delay from the database clock. */
export type NextRun = { at: Date } | { delayMs: number };

/** row_to_json renders bytea as "\\x…" hex text; turn it back into the row shape. */
function actorFromJson(j: Record<string, unknown>): ActorRow {
  const bytes = (v: unknown) =>
    typeof v === "string" && v.startsWith("\\x") ? Buffer.from(v.slice(2), "hex") : null;
  return actorFromRow({ ...j, input: bytes(j.input) ?? Buffer.alloc(0), output: bytes(j.output) });
}
