import { messageEnvelopeSql } from "./envelope.js";
import { broadcastPending, unclaimedPending } from "./pending.js";

/*
 * receive's reads, under the exclusive locks of the sources (LOCK_SOURCES_EXCLUSIVE): the
 * next message of one subscription, as an envelope naming the subscription's channel ($3).
 */

/** Broadcast: the first message on $1 after cursor $2 (the caller then moves the cursor to its id). */
export const NEXT_BROADCAST = `
  SELECT m.id::text AS id, ${messageEnvelopeSql("m", "$3::text")} AS env FROM {schema}.messages m
   WHERE ${broadcastPending("m", "$1", "$2")} ORDER BY m.id LIMIT 1`;

/** Competing / direct ($4 the mode): claims the oldest unclaimed message on $1 for actor $2. */
export const CLAIM_NEXT = `
  UPDATE {schema}.messages m SET claimed_by = $2, claimed_at = now()
   WHERE m.id = (SELECT q.id FROM {schema}.messages q WHERE ${unclaimedPending("q", "$1", "$4")}
                  ORDER BY q.id LIMIT 1)
  RETURNING ${messageEnvelopeSql("m", "$3::text")} AS env`;
