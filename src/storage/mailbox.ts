/**
 * The mailbox rule, in one place. A direct message to actor A on channel C is stored under
 * the key mailbox(C, A): in `messages.channel` (with `direct_to = A`) and in the direct
 * subscription's `subscriptions.source`; wakeups and the source's advisory lock use the same
 * key. The key must be injective — two different (channel, actor) pairs never share one —
 * or an actor could read another's mail by picking a channel name: with the plain
 * "C:A" of old, send("a:a", "x") and actor "a" reading "x:a" both used "x:a:a".
 *
 * So the channel part is escaped before the separator: "%" → "%25", ":" → "%3A". The first
 * unescaped ":" then ends the channel, and the rest is the actor id, whatever it contains.
 * Channels without ":" or "%" keep the key they always had ("orders:ana"), which is why
 * migration 0006 only rewrites rows whose channel has one of them.
 *
 * A mailbox key may equal a plain channel's name (mailbox("room", "lobby") and the channel
 * "room:lobby"); direct and channel messages are told apart by `direct_to` everywhere
 * (NULL for a channel message), and by the subscription's mode.
 *
 * This function is the only definition. SQL that needs the keys of many actors at once (a
 * group broadcast) gets mailboxPrefix(channel) as a parameter and appends the actor id
 * (mailboxKeySql); test/mailbox.test.ts checks that the two agree.
 * migrations/0006_mailbox_keys.sql spelled the same expression out once, to re-key old rows.
 */
export function mailbox(channel: string, actorId: string): string {
  return mailboxPrefix(channel) + actorId;
}

/** What every mailbox key of `channel` starts with: the escaped channel and the separator. */
export function mailboxPrefix(channel: string): string {
  return `${channel.replace(/[%:]/g, (c) => (c === "%" ? "%25" : "%3A"))}:`;
}

/** In SQL: the mailbox key from a mailboxPrefix() parameter and an actor id expression. */
export function mailboxKeySql(prefixParam: string, actorExpr: string): string {
  return `(${prefixParam}::text || ${actorExpr})`;
}

/** The channel a direct message was sent on, from its key and target; the key itself if it is not one of that actor's. */
export function channelOfMailbox(key: string, actorId: string): string {
  const suffix = `:${actorId}`;
  if (!key.endsWith(suffix)) return key;
  const head = key.slice(0, -suffix.length);
  if (head.includes(":")) return key; // not an escaped channel part (a row written before 0006)
  return head.replace(/%(25|3A)/g, (_, h: string) => (h === "25" ? "%" : ":"));
}

/**
 * The journal name of a send (what replay compares): "<channel>:<actorId>", as it always
 * was, so journals written before the mailbox keys changed replay unchanged. It is a label
 * for humans and the non-determinism check, never a storage key.
 */
export function sendLabel(channel: string, actorId: string): string {
  return `${channel}:${actorId}`;
}
