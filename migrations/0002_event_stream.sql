-- The global event stream (src/stream/event-stream.ts): journal entries and published
-- messages in one order that a projection can follow from a stored position.
--
-- Every streamed row records the transaction that inserted it (txid, a 64-bit xid8 that never
-- wraps). Readers take only rows whose transaction is below their snapshot's xmin, i.e.
-- already finished, in (txid, row key) order; so no row can later appear before a position a
-- reader has passed. A bigserial id would not do: ids are handed out at insert, not at commit.
--
-- pg_current_xact_id() is STABLE, not volatile: ADD COLUMN with it as default is metadata only
-- (no table rewrite, no backfill); existing rows read as this migration's transaction id and
-- every later insert gets its own. The default is all the hot path pays, plus one index.
ALTER TABLE {schema}.journal ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE {schema}.messages ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
-- Moving a journal into the archive (recur) should copy txid so entries keep their stream
-- position; a copy that leaves it out gets the archiving transaction's id: the entries then
-- reappear later in the stream (delivered again, never lost).
ALTER TABLE {schema}.journal_archive ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();

-- Read in stream order: (txid, then the row key). Byte order ("C") for actor ids, so that the
-- order matches the order of the position strings.
CREATE INDEX journal_stream ON {schema}.journal (txid, actor_id COLLATE "C", seq);
CREATE INDEX journal_archive_stream ON {schema}.journal_archive (txid, actor_id COLLATE "C", generation, seq);
CREATE INDEX messages_stream ON {schema}.messages (txid, id);

-- A projection's position is a string (see encodePosition); '' is the start of the stream.
-- The bigint `position` column of 0001 is unused.
ALTER TABLE {schema}.stream_positions ADD COLUMN cursor text NOT NULL DEFAULT '';
