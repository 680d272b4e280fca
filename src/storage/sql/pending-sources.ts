import { hasPending } from "./pending.js";

/**
 * The sweep's question: sources where a waiting subscriber has a pending message — what a
 * lost wakeup would leave behind. $1: at most that many; $2: only actors of these types
 * (NULL: any).
 */
export const PENDING_SOURCES = `
  SELECT DISTINCT s.source FROM {schema}.subscriptions s
    JOIN {schema}.actors a ON a.id = s.actor_id AND a.status = 'waiting' AND a.wait_seq = s.wait_seq
                           AND ($2::text[] IS NULL OR a.actor = ANY($2::text[]))
   WHERE ${hasPending("s", { waiting: true })}
   LIMIT $1`;
