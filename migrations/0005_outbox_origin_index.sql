-- A transactional step can emit several events (tx.emit); each gets its own index within
-- the step, so the origin stays unique per event and not per journal position.
ALTER TABLE {schema}.outbox ADD COLUMN origin_index integer NOT NULL DEFAULT 0;
DROP INDEX {schema}.outbox_origin;
CREATE UNIQUE INDEX outbox_origin ON {schema}.outbox (actor_id, origin_generation, origin_seq, origin_index)
  WHERE actor_id IS NOT NULL;
