import { LOCK_NS } from "../sql.js";

/*
 * Ordering and the lost-wakeup window are closed with one advisory lock per message
 * source: publishers take it SHARED for their insert (they never block each other), and
 * whoever reads a source to move a cursor, claim, or register a wait takes it EXCLUSIVE,
 * so it waits for in-flight publishes to commit and sees them; any later publish sees the
 * registered wait. Locks on several sources are always taken in hash order (no deadlocks).
 * Where these sit in the global lock order: see the comment in ../sql.ts.
 */

/** The shared (publisher's) lock of the source `src` (an SQL text expression). */
export const LOCK_SHARED = (src: string) =>
  `pg_advisory_xact_lock_shared(${LOCK_NS.channel}, hashtext(${src}))`;

/**
 * Shared locks on every `source` of the rows of `from` (a CTE or subquery), in hash order;
 * a one-column select whose single row proves they are all held.
 */
export const LOCK_SHARED_ALL = (from: string) =>
  `SELECT count(${LOCK_SHARED("x.source")}) AS locked FROM (SELECT source FROM ${from} ORDER BY hashtext(source)) x`;

/** The exclusive (reader's) locks of the sources in $1 (text[]), in hash order. */
export const LOCK_SOURCES_EXCLUSIVE = `
  SELECT count(pg_advisory_xact_lock(${LOCK_NS.channel}, h))
    FROM (SELECT DISTINCT hashtext(s) AS h FROM unnest($1::text[]) s ORDER BY 1) x`;
