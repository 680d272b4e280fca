-- Direct mailboxes get an unambiguous key (src/storage/mailbox.ts). Until now a direct message
-- to actor A on channel C lived under "C:A", and both may contain ':', so send("a:a", "x")
-- and actor "a" reading channel "x:a" shared the mailbox "x:a:a": one actor could read
-- another's mail by choosing a channel name. The key is now the channel with '%' → '%25'
-- and ':' → '%3A', then ':', then the actor id — injective, and unchanged for channels
-- without ':' or '%'.
--
-- Old keys are converted exactly, without guessing:
-- - messages: every direct message carries its target in direct_to, so its channel is the
--   old key minus the suffix ':' || direct_to. A direct row whose key does not end with that
--   suffix was not written by troupe and is left as it is (no troupe reader will find it).
-- - subscriptions: a direct subscription has its channel and actor_id in their own columns;
--   its source is recomputed from them.
-- Messages that were already read through the shared key (claimed_by <> direct_to) stay
-- claimed: the migration cannot undo a delivery. They can be listed with
--   SELECT id, channel, direct_to, claimed_by FROM messages
--    WHERE direct_to IS NOT NULL AND claimed_by IS NOT NULL AND claimed_by <> direct_to;
--
-- Idempotency keys are scoped per mailbox and per channel: a mailbox key may equal a
-- channel's name (mailbox "room" + "lobby" and the channel "room:lobby"), so the unique
-- index tells direct rows from channel rows.
DROP INDEX {schema}.messages_idempotency;

UPDATE {schema}.messages
   SET channel = replace(replace(left(channel, length(channel) - length(direct_to) - 1), '%', '%25'), ':', '%3A')
                 || ':' || direct_to
 WHERE direct_to IS NOT NULL
   AND right(channel, length(direct_to) + 1) = ':' || direct_to
   AND left(channel, length(channel) - length(direct_to) - 1) ~ '[:%]';

UPDATE {schema}.subscriptions
   SET source = replace(replace(channel, '%', '%25'), ':', '%3A') || ':' || actor_id
 WHERE mode = 'direct' AND channel ~ '[:%]';

CREATE UNIQUE INDEX messages_idempotency ON {schema}.messages (channel, (direct_to IS NOT NULL), idempotency_key)
  WHERE idempotency_key IS NOT NULL;
