-- troupe data model. {schema} is replaced by the configured schema name (quoted).
-- Append-only: never edit a released migration; add 0002_… instead.

-- Actor instances: one row per durable actor. The row is also the actor's lock:
-- lease_owner/lease_expires_at say which worker runs it, lease_version fences every write.
CREATE TABLE {schema}.actors (
  id               text PRIMARY KEY,
  actor            text NOT NULL,
  status           text NOT NULL CHECK (status IN ('running','waiting','completed','failed','cancelled','compensating')),
  input            bytea NOT NULL,
  input_json       jsonb,
  output           bytea,
  error            jsonb,
  unique_key       text,
  idempotency_key  text,
  context          jsonb,
  generation       integer NOT NULL DEFAULT 0,      -- bumped by recur (continue-as-new)
  journal_version  integer NOT NULL DEFAULT 0,      -- entries in the current generation's journal
  lease_owner      text,
  lease_expires_at timestamptz,
  lease_version    bigint NOT NULL DEFAULT 0,       -- fencing token, +1 on every acquisition
  sticky_worker    text,                            -- worker holding the suspended execution in memory
  wait_seq         integer,                         -- journal position the actor waits at
  wait_kind        text,                            -- journal kind/name the completion is recorded under
  wait_name        text,
  wait_until       timestamptz,
  cancel_requested_at timestamptz,
  cancel_reason    text,
  started_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
-- Runnable = running/compensating with no live lease: what workers claim.
CREATE INDEX actors_claimable ON {schema}.actors (lease_expires_at NULLS FIRST, started_at)
  WHERE status IN ('running','compensating');
CREATE UNIQUE INDEX actors_unique_key ON {schema}.actors (unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('running','waiting','compensating');
CREATE UNIQUE INDEX actors_idempotency_key ON {schema}.actors (idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX actors_status_started ON {schema}.actors (status, started_at, id);
CREATE INDEX actors_actor_started ON {schema}.actors (actor, started_at, id);
CREATE INDEX actors_started ON {schema}.actors (started_at, id);
CREATE INDEX actors_finished ON {schema}.actors (finished_at) WHERE finished_at IS NOT NULL;

-- The journal (history) of the current generation: one row per journaled operation.
CREATE TABLE {schema}.journal (
  actor_id    text NOT NULL REFERENCES {schema}.actors(id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  kind        text NOT NULL,
  name        text NOT NULL,
  result      bytea,
  error       jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (actor_id, seq)
);

-- Journals of earlier generations, moved here by recur; readable through history().
CREATE TABLE {schema}.journal_archive (
  actor_id    text NOT NULL REFERENCES {schema}.actors(id) ON DELETE CASCADE,
  generation  integer NOT NULL,
  seq         integer NOT NULL,
  kind        text NOT NULL,
  name        text NOT NULL,
  result      bytea,
  error       jsonb,
  created_at  timestamptz NOT NULL,
  archived_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (actor_id, generation, seq)
);

-- Durable timers: a waiting actor's deadline (sleep, or a receive timeout).
CREATE TABLE {schema}.timers (
  actor_id    text PRIMARY KEY REFERENCES {schema}.actors(id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  due_at      timestamptz NOT NULL
);
CREATE INDEX timers_due ON {schema}.timers (due_at);

-- Saga compensations registered by successful steps; run LIFO on failure or cancel.
CREATE TABLE {schema}.compensations (
  actor_id    text NOT NULL REFERENCES {schema}.actors(id) ON DELETE CASCADE,
  generation  integer NOT NULL,
  seq         integer NOT NULL,
  name        text NOT NULL,
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','done','failed')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  done_at     timestamptz,
  PRIMARY KEY (actor_id, generation, seq)
);

-- Channels: one delivery mode per channel, fixed by the first subscriber.
CREATE TABLE {schema}.channels (
  name        text PRIMARY KEY,
  mode        text NOT NULL CHECK (mode IN ('broadcast','competing','direct')),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Channel messages. Direct messages live on "<channel>:<actorId>".
-- A claim (competing and direct) is recorded on the row: claimed_by/claimed_at.
-- origin_* ties a message to the journal position that published it, so a retried
-- publish can never write it twice (effects once).
CREATE TABLE {schema}.messages (
  id                bigserial PRIMARY KEY,
  channel           text NOT NULL,
  data              bytea NOT NULL,
  metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
  sender            text,
  direct_to         text,                              -- target actor of a direct message
  published_at      timestamptz NOT NULL DEFAULT now(),
  claimed_by        text,
  claimed_at        timestamptz,
  origin_actor      text,
  origin_generation integer,
  origin_seq        integer,
  origin_index      integer,
  idempotency_key   text,
  context           jsonb
);
CREATE INDEX messages_channel ON {schema}.messages (channel, id);
CREATE INDEX messages_unclaimed ON {schema}.messages (channel, id) WHERE claimed_by IS NULL;
CREATE INDEX messages_published ON {schema}.messages (published_at);
CREATE UNIQUE INDEX messages_origin ON {schema}.messages (origin_actor, origin_generation, origin_seq, origin_index)
  WHERE origin_actor IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency ON {schema}.messages (channel, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Subscriptions with cursors. `source` is the channel whose messages are read
-- (the channel itself, or "<channel>:<actorId>" for direct). `cursor` is the last
-- broadcast message delivered. wait_seq is set while the actor waits on this channel.
CREATE TABLE {schema}.subscriptions (
  actor_id      text NOT NULL REFERENCES {schema}.actors(id) ON DELETE CASCADE,
  channel       text NOT NULL,
  mode          text NOT NULL CHECK (mode IN ('broadcast','competing','direct')),
  source        text NOT NULL,
  cursor        bigint NOT NULL DEFAULT 0,
  wait_seq      integer,
  subscribed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (actor_id, channel)
);
CREATE INDEX subscriptions_source ON {schema}.subscriptions (source);
CREATE INDEX subscriptions_waiting ON {schema}.subscriptions (source) WHERE wait_seq IS NOT NULL;

-- Process groups (Erlang pg).
CREATE TABLE {schema}.group_members (
  group_name  text NOT NULL,
  actor_id    text NOT NULL REFERENCES {schema}.actors(id) ON DELETE CASCADE,
  joined_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_name, actor_id)
);
CREATE INDEX group_members_actor ON {schema}.group_members (actor_id);

-- Transactional outbox of CloudEvents, relayed to a sink.
CREATE TABLE {schema}.outbox (
  id                bigserial PRIMARY KEY,
  event_id          text NOT NULL UNIQUE,
  actor_id          text,
  event             jsonb NOT NULL,
  data              bytea,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','processing','sent','dead')),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  locked_by         text,
  locked_at         timestamptz,
  last_error        text,
  origin_generation integer,
  origin_seq        integer,
  created_at        timestamptz NOT NULL DEFAULT now(),
  sent_at           timestamptz
);
CREATE INDEX outbox_ready ON {schema}.outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_processing ON {schema}.outbox (locked_at) WHERE status = 'processing';
CREATE UNIQUE INDEX outbox_origin ON {schema}.outbox (actor_id, origin_generation, origin_seq)
  WHERE actor_id IS NOT NULL;

-- System locks with a lease: e.g. "leader" (one worker runs the background loops).
CREATE TABLE {schema}.system_locks (
  name        text PRIMARY KEY,
  owner       text NOT NULL,
  expires_at  timestamptz NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now()
);

-- Workers seen recently (for operators and the dashboard).
CREATE TABLE {schema}.workers (
  id           text PRIMARY KEY,
  hostname     text NOT NULL,
  pid          integer NOT NULL,
  concurrency  integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Positions of event-stream consumers (projections) for resumable reads.
CREATE TABLE {schema}.stream_positions (
  name        text PRIMARY KEY,
  position    bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
