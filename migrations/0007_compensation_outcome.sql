-- A compensation that could not run (its step was not reached again on replay, so no code
-- was registered for it) is 'skipped', told apart from one that ran and failed ('failed');
-- `error` keeps why, for the actor's record.
ALTER TABLE {schema}.compensations DROP CONSTRAINT compensations_status_check;
ALTER TABLE {schema}.compensations ADD CONSTRAINT compensations_status_check
  CHECK (status IN ('pending','done','failed','skipped'));
ALTER TABLE {schema}.compensations ADD COLUMN error jsonb;
