-- One random id per troupe installation (database + schema), made once at migration. It
-- scopes the Redis wakeup topic: two deployments sharing a Redis must never hear each
-- other's hints or non-durable messages, even with the same schema name.
CREATE TABLE {schema}.installation (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id         text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.installation (id) VALUES (replace(gen_random_uuid()::text, '-', ''));
