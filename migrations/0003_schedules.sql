-- Recurring actors: a schedule spawns one run at a time (cron or interval). With an
-- interval, a run that reports no work ({ idle: true }) or fails stretches the next
-- interval by backoff_factor up to max_interval_ms; a run that did work resets it.
CREATE TABLE {schema}.schedules (
  name                text PRIMARY KEY,
  actor               text NOT NULL,
  input               bytea NOT NULL,
  cron                text,
  every_ms            bigint,
  max_interval_ms     bigint,
  backoff_factor      double precision NOT NULL DEFAULT 2,
  current_interval_ms bigint,
  next_run_at         timestamptz,          -- NULL while a run is active
  last_actor_id       text,
  runs                integer NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK ((cron IS NULL) <> (every_ms IS NULL))
);
CREATE INDEX schedules_due ON {schema}.schedules (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX schedules_active ON {schema}.schedules (last_actor_id) WHERE next_run_at IS NULL;
