/*
 * The "pending message" predicate, written once. A subscription has a message to read when
 *   - broadcast: a channel message (direct_to IS NULL) after its cursor;
 *   - competing: an unclaimed channel message;
 *   - direct: an unclaimed message in its mailbox (direct_to IS NOT NULL; a mailbox key may
 *     equal a channel's name, so direct_to is what tells the two apart, see mailbox.ts).
 * Delivery, receive, the sweep, retention and the dashboard's read model all use these
 * fragments; each keeps to the indexes messages_channel (channel, id) and
 * messages_unclaimed (channel, id) WHERE claimed_by IS NULL.
 *
 * Arguments are SQL expressions: `m` the messages alias, the others columns or parameters.
 */

/** Message `m` is on `source` after `cursor`: pending for a broadcast subscription at that cursor. */
export const broadcastPending = (m: string, source: string, cursor: string) =>
  `${m}.channel = ${source} AND ${m}.id > ${cursor} AND ${m}.direct_to IS NULL`;

/**
 * Message `m` is on `source`, unclaimed and of the kind a subscription in `mode` reads:
 * a mode expression (`s.mode`, `$4`), or a known mode (the kind's test is then written out).
 */
export const unclaimedPending = (
  m: string,
  source: string,
  mode: string | { known: "competing" | "direct" },
) =>
  `${m}.channel = ${source} AND ${m}.claimed_by IS NULL AND ` +
  (typeof mode === "string"
    ? `(${m}.direct_to IS NOT NULL) = (${mode} = 'direct')`
    : `${m}.direct_to IS ${mode.known === "direct" ? "NOT " : ""}NULL`);

/**
 * Subscription `s` has a pending message (any mode). With `waiting`, only while it is
 * registered as a wait (wait_seq set): what delivery and the sweep look for.
 */
export const hasPending = (
  s: string,
  opts: { waiting?: boolean } = {},
) => `${opts.waiting ? `${s}.wait_seq IS NOT NULL AND ` : ""}(
      (${s}.mode = 'broadcast' AND EXISTS (
         SELECT 1 FROM {schema}.messages m WHERE ${broadcastPending("m", `${s}.source`, `${s}.cursor`)}))
   OR (${s}.mode <> 'broadcast' AND EXISTS (
         SELECT 1 FROM {schema}.messages m WHERE ${unclaimedPending("m", `${s}.source`, `${s}.mode`)})))`;
