import { FENCED_EFFECT, fencedParams } from "../fenced-effect.js";
import { mailboxKeySql } from "../mailbox.js";
import type { Fence, JournalEntry } from "../rows.js";
import { jsonResultSql } from "./envelope.js";
import { LOCK_SHARED, LOCK_SHARED_ALL } from "./source-locks.js";

/*
 * THE message insert: every message troupe stores — published, sent or group-broadcast,
 * from outside actors, from an actor, or from a transactional step — is written by the one
 * statement built here. Each kind of writer gets its own fixed text (so it stays a named
 * prepared statement), built from the same parts, in this order:
 *
 *   f, loc  (an actor's write only) the lease fence and the buffered journal entries;
 *   rcpt    the recipients: one source (a channel, or one actor's mailbox), or every member
 *           of a group, each under its mailbox key (prefix parameter || actor id: the key is
 *           computed by the TypeScript rule in ../mailbox.ts, never re-spelled in SQL);
 *   l       the shared advisory lock of every recipient source (in hash order), held until
 *           the writer's commit, so readers that take it exclusively see the message;
 *   ins     the INSERT, with the message's origin (actor id + journal position) under the
 *           unique index messages_origin, so a retried write can never duplicate it;
 *   j       (an actor's write only) the op's own journal entry, in the same statement: a
 *           replay finds it and never writes again.
 *
 * One statement per call, whoever writes: no extra round trip for any writer.
 */

/** The journal position a message was written from (unique: a retried write cannot duplicate it). */
export interface MessageOrigin {
  actorId: string;
  generation: number;
  seq: number;
  index: number;
}

/** What to store: the recipients, the encoded payload and its envelope fields. */
export interface MessageWrite {
  /**
   * One source (a channel, or the mailbox of `directTo`, which must exist), or one direct
   * message per current member of `group`, each in its mailbox `mailboxPrefix + actor id`.
   */
  to: { source: string; directTo: string | null } | { group: string; mailboxPrefix: string };
  data: Buffer;
  metadata: Record<string, unknown>;
  /** Outside actors, one recipient only: a repeated key writes nothing (see MessageStore). */
  idempotencyKey?: string | undefined;
  /** Ambient context captured by the publisher. */
  context?: Record<string, unknown> | null | undefined;
}

/** Who writes, which decides the origin and what else the statement does. */
export type WriteAt =
  /** Outside actors: no origin (an idempotency key, if any, guards repeats). */
  | { by: "client" }
  /** An actor, journaled in the same statement under its lease fence. */
  | {
      by: "actor";
      fence: Fence;
      buffered: readonly JournalEntry[];
      leaseMs: number;
      entry: { seq: number; kind: string; name: string };
    }
  /** A transactional step, on its own transaction: the origin is the step's position. */
  | { by: "step"; origin: MessageOrigin }
  /** A keyed group broadcast from outside: the key is the origin (see MessageStore.broadcastOnce). */
  | { by: "once"; key: string };

// A repeated idempotency key (outside actors) writes nothing; keys are scoped per mailbox
// and per channel (a mailbox key can equal a channel's name), as the unique index is.
const ON_REPEATED_KEY = `
    ON CONFLICT (channel, (direct_to IS NOT NULL), idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`;

/** Positional parameters, numbered in the order they are added (the same order for every call of a kind). */
class Params {
  constructor(readonly values: unknown[] = []) {}
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/**
 * The statement for `w` written `at`, and its parameters. The text depends only on the
 * kind of write (recipients one/group × writer), never on the values.
 * It returns one row: `fenced` (0 = the lease is gone), `ids` and `sources` of the rows written.
 */
export function insertMessages(w: MessageWrite, at: WriteAt): { text: string; params: unknown[] } {
  const fenced = at.by === "actor";
  const p = new Params(fenced ? fencedParams(at.fence, at.buffered, at.leaseMs) : []);
  const ctes: string[] = [];
  let rcpt: string;
  let lock: string;
  if ("source" in w.to) {
    const src = p.add(w.to.source);
    const to = p.add(w.to.directTo);
    const targetExists = `(${to}::text IS NULL OR EXISTS (SELECT 1 FROM {schema}.actors WHERE id = ${to}))`;
    // An actor's send checks its target in the fence itself: a missing target writes nothing
    // at all, not even the buffered entries (they go with the error entry instead).
    if (fenced) ctes.push(FENCED_EFFECT(`AND ${targetExists}`));
    rcpt = `SELECT ${src}::text AS source, ${to}::text AS direct_to, 0 AS rank${fenced ? "" : ` WHERE ${targetExists}`}`;
    lock = `SELECT ${LOCK_SHARED(src)} AS locked${fenced ? " FROM f" : ""}`;
  } else {
    if (fenced) ctes.push(FENCED_EFFECT());
    const group = p.add(w.to.group);
    const prefix = p.add(w.to.mailboxPrefix);
    rcpt = `
      SELECT ${mailboxKeySql(prefix, "gm.actor_id")} AS source, gm.actor_id AS direct_to,
             row_number() OVER (ORDER BY gm.actor_id) - 1 AS rank
        FROM {schema}.group_members gm${fenced ? ", f" : ""} WHERE gm.group_name = ${group}`;
    lock = LOCK_SHARED_ALL("rcpt");
  }
  ctes.push(`rcpt AS (${rcpt})`, `l AS (${lock})`);

  // origin: sender, origin_actor, origin_generation, origin_seq, and the index of the first
  // recipient (the others follow in actor id order). An actor's group broadcast numbers its
  // members from 1 and a keyed one likewise, as they always have; a step continues its index.
  const one = "source" in w.to;
  let origin: [string, string, string, string, string];
  if (at.by === "actor") origin = ["f.id", "f.id", "f.generation", p.add(at.entry.seq), one ? "0" : "1"];
  else if (at.by === "step") {
    const actor = p.add(at.origin.actorId);
    origin = [actor, actor, p.add(at.origin.generation), p.add(at.origin.seq), p.add(at.origin.index)];
  } else if (at.by === "once") origin = ["NULL", p.add(at.key), "0", "(SELECT count(*) FROM rcpt)", "1"];
  else origin = ["NULL", "NULL", "NULL", "NULL", "NULL"];
  const [sender, oActor, oGeneration, oSeq, oIndex] = origin;
  const keyed = at.by === "client" && one;
  ctes.push(`ins AS (
    INSERT INTO {schema}.messages (channel, data, metadata, idempotency_key, sender, direct_to,
                                   origin_actor, origin_generation, origin_seq, origin_index, context)
    SELECT r.source, ${p.add(w.data)}, ${p.add(JSON.stringify(w.metadata))}::jsonb, ${keyed ? p.add(w.idempotencyKey ?? null) : "NULL"},
           ${sender}, r.direct_to, ${oActor}, ${oGeneration}, ${oSeq}, ${oIndex === "NULL" ? "NULL" : `${oIndex} + r.rank`},
           ${p.add(w.context ? JSON.stringify(w.context) : null)}::jsonb
      FROM rcpt r, l${fenced ? ", f" : ""}${keyed ? ON_REPEATED_KEY : ""}
    RETURNING id, channel)`);

  if (at.by === "actor") {
    const result = one
      ? "json_build_object('id', ins.id::text)"
      : "json_build_object('count', (SELECT count(*) FROM ins))";
    ctes.push(`j AS (
    INSERT INTO {schema}.journal (actor_id, seq, kind, name, result)
    SELECT f.id, ${oSeq}, ${p.add(at.entry.kind)}, ${p.add(at.entry.name)}, ${jsonResultSql(result)}
      FROM f${one ? ", ins" : ""})`);
  }
  const text = `
  WITH ${ctes.map((c) => c.trim()).join(",\n  ")}
  SELECT ${fenced ? "(SELECT count(*)::int FROM f)" : "1"} AS fenced,
         array_agg(ins.id::text) AS ids, array_agg(ins.channel) AS sources FROM ins`;
  return { text, params: p.values };
}
