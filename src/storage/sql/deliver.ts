import { messageEnvelopeSql } from "./envelope.js";
import { MS } from "../schema-db.js";
import { broadcastPending, hasPending, unclaimedPending } from "./pending.js";

/**
 * Lock-first delivery, set-based, ONE statement (run after LOCK_SOURCES_EXCLUSIVE on $1 in
 * the same transaction). For the sources $1, take every waiting subscriber whose actor row
 * is free (SKIP LOCKED), pair it with its next message (broadcast: after its cursor;
 * competing/direct: distinct unclaimed messages in FIFO order), journal the delivery at the
 * waiting position, advance cursors / write claims, clear the waits and timers and take the
 * lease for worker $3 for $5 ms. $2: leave actors whose execution is parked on another live
 * worker (actors.sticky_worker) to that worker; $4: at most that many actors; $6: only these actor types.
 *
 * CTEs: locked (the actors taken), bcast (broadcast pairs), comp_heads / comp_waiters /
 * comp_messages / comp (competing and direct pairs: the k-th waiter of a source gets its k-th
 * unclaimed message), pick (one message per actor, the oldest), then the writes: taken,
 * journaled, cursors, claims, timers_cleared.
 */
export const DELIVER = `
  WITH locked AS (
    SELECT a.id, a.wait_seq, a.wait_kind, a.wait_name FROM {schema}.actors a
     WHERE a.status = 'waiting'
       -- only waiters with something pending: LIMIT must never fill up with caught-up subscribers
       AND a.id IN (
         SELECT s.actor_id FROM {schema}.subscriptions s
          WHERE s.source = ANY($1) AND ${hasPending("s", { waiting: true })})
       -- parked: the worker holding the parked execution resumes it cheaply, unless that
       -- worker has not heartbeaten for a lease (dead or frozen): then anyone may take it
       AND (NOT $2 OR a.sticky_worker IS NULL OR a.sticky_worker = $3 OR NOT EXISTS (
             SELECT 1 FROM {schema}.workers w WHERE w.id = a.sticky_worker AND w.heartbeat_at > now() - ${MS("$5")}))
       AND a.actor = ANY($6::text[])
     LIMIT $4
     FOR UPDATE OF a SKIP LOCKED),
  bcast AS (
    SELECT l.id, l.wait_seq, l.wait_kind, l.wait_name, s.channel, s.source, s.mode, m.id AS mid, m.published_at,
           ${messageEnvelopeSql("m", "s.channel")} AS env
      FROM locked l
      JOIN {schema}.subscriptions s ON s.actor_id = l.id AND s.wait_seq = l.wait_seq AND s.mode = 'broadcast' AND s.source = ANY($1)
      CROSS JOIN LATERAL (
        SELECT * FROM {schema}.messages m WHERE ${broadcastPending("m", "s.source", "s.cursor")}
         ORDER BY m.id LIMIT 1) m),
  comp_heads AS (
    SELECT l.id, l.wait_seq, l.wait_kind, l.wait_name, s.channel, s.source, s.mode,
           (SELECT min(m.id) FROM {schema}.messages m WHERE ${unclaimedPending("m", "s.source", "s.mode")}) AS head
      FROM locked l
      JOIN {schema}.subscriptions s ON s.actor_id = l.id AND s.wait_seq = l.wait_seq AND s.mode <> 'broadcast' AND s.source = ANY($1)),
  comp_waiters AS (
    SELECT c.id, c.wait_seq, c.wait_kind, c.wait_name, c.channel, c.source, c.mode,
           row_number() OVER (PARTITION BY c.source ORDER BY c.id) AS rn
      FROM (SELECT DISTINCT ON (id) * FROM comp_heads WHERE head IS NOT NULL ORDER BY id, head) c),
  comp_messages AS (
    SELECT m.*, row_number() OVER (PARTITION BY m.channel ORDER BY m.id) AS rn
      FROM (SELECT source, mode, count(*) AS n FROM comp_waiters GROUP BY source, mode) ws
      CROSS JOIN LATERAL (
        SELECT * FROM {schema}.messages m WHERE ${unclaimedPending("m", "ws.source", "ws.mode")}
         ORDER BY m.id LIMIT ws.n) m),
  comp AS (
    SELECT w.id, w.wait_seq, w.wait_kind, w.wait_name, w.channel, w.source, w.mode, cm.id AS mid, cm.published_at,
           ${messageEnvelopeSql("cm", "w.channel")} AS env
      FROM comp_waiters w JOIN comp_messages cm ON cm.channel = w.source AND cm.rn = w.rn),
  pick AS (
    SELECT DISTINCT ON (id) * FROM (SELECT * FROM bcast UNION ALL SELECT * FROM comp) c ORDER BY id, published_at, mid),
  taken AS (
    UPDATE {schema}.actors x
       SET status = 'running', lease_owner = $3, lease_expires_at = now() + ${MS("$5")}, lease_version = x.lease_version + 1,
           wait_seq = NULL, wait_kind = NULL, wait_name = NULL, wait_until = NULL,
           journal_version = x.journal_version + 1, updated_at = now()
      FROM pick p WHERE x.id = p.id
    RETURNING x.*),
  journaled AS (
    INSERT INTO {schema}.journal (actor_id, seq, kind, name, result)
    SELECT p.id, p.wait_seq, p.wait_kind, p.wait_name, p.env FROM pick p),
  cursors AS (
    UPDATE {schema}.subscriptions s
       SET cursor = CASE WHEN s.source = p.source AND s.mode = 'broadcast' THEN p.mid ELSE s.cursor END, wait_seq = NULL
      FROM pick p WHERE s.actor_id = p.id),
  claims AS (
    UPDATE {schema}.messages m SET claimed_by = p.id, claimed_at = now()
      FROM pick p WHERE m.id = p.mid AND p.mode <> 'broadcast'),
  timers_cleared AS (
    DELETE FROM {schema}.timers t USING pick p WHERE t.actor_id = p.id)
  SELECT taken.*, p.wait_seq AS d_seq, p.wait_kind AS d_kind, p.wait_name AS d_name, p.env AS d_env
    FROM taken JOIN pick p ON p.id = taken.id`;
