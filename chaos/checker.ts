/**
 * The invariant checker: after a round, reads troupe's tables and the side records
 * (chaos/side.ts) and compares them with the round's plan. Returns the violations found
 * (empty: the round held every invariant). See docs/reliability.md for the list.
 */
import type pg from "pg";
import { decode } from "../src/codec.js";
import {
  CHURN,
  CLIENT,
  churnerId,
  consumerId,
  counterId,
  mailboxId,
  publisherId,
  subscriberId,
  type Payload,
  type RoundPlan,
  type Send,
} from "./plan.js";

type Q = <R extends pg.QueryResultRow = Record<string, any>>(sql: string, params?: unknown[]) => Promise<R[]>;

export interface CheckResult {
  /** The first few of each kind, with details. */
  violations: string[];
  /** How many in all. */
  total: number;
  /** Messages the plan sends (each counted once, whatever its fan-out). */
  messages: number;
  deliveries: number;
}

const S = `"troupe"`;

export async function check(plan: RoundPlan, q: Q): Promise<CheckResult> {
  const violations: string[] = [];
  const counts = new Map<string, number>();
  const v = (category: string, detail: string) => {
    const n = (counts.get(category) ?? 0) + 1;
    counts.set(category, n);
    if (n <= 5) violations.push(`${category}: ${detail}`);
    else if (n === 6) violations.push(`${category}: … (more)`);
  };

  // ---- what was sent -------------------------------------------------------------------
  const sources: [string, Send[]][] = [
    ...plan.publishers.map((s, i): [string, Send[]] => [publisherId(i), s]),
    [CLIENT, plan.client],
  ];
  const messages = sources.reduce((n, [, s]) => n + s.length, 0);
  /** reader → the keys "src/n" it must get, in per-source order. */
  const want = new Map<string, Set<string>>();
  const add = (reader: string, key: string) => {
    let set = want.get(reader);
    if (!set) want.set(reader, (set = new Set()));
    set.add(key);
  };
  const competing = new Set<string>();
  for (const [src, list] of sources)
    list.forEach((s, n) => {
      const key = `${src}/${n}`;
      if (s.kind === "b") for (let i = 0; i < plan.subscribers; i++) add(subscriberId(i), key);
      else if (s.kind === "c") competing.add(key);
      else if (s.kind === "d") add(mailboxId(s.box), key);
      else for (let i = 0; i < plan.mailboxes; i++) add(mailboxId(i), key);
    });

  // Messages still in the database, by payload (to tell "not delivered" from "gone").
  const present = new Map<string, string[]>(); // "src/n" → channels
  for (const m of await q<{ channel: string; data: Buffer; claimed_by: string | null }>(
    `SELECT channel, data, claimed_by FROM ${S}.messages`,
  )) {
    let d: Payload | undefined;
    try {
      d = decode<Payload>(m.data);
    } catch {
      continue;
    }
    if (!d || typeof d.src !== "string") continue;
    const key = `${d.src}/${d.n}`;
    present.set(key, [
      ...(present.get(key) ?? []),
      m.claimed_by ? `${m.channel} (claimed by ${m.claimed_by})` : m.channel,
    ]);
  }

  // ---- deliveries: each once, in order, none lost ---------------------------------------
  const seen = await q<{
    actor_id: string;
    msg_id: string;
    src: string;
    n: number;
    worker: string;
    lease_owner: string | null;
    lease_version: string | null;
  }>(
    `SELECT actor_id, msg_id::text, src, n, worker, lease_owner, lease_version::text FROM chaos_seen ORDER BY id`,
  );
  const byReader = new Map<string, typeof seen>();
  const msgIdOf = new Map<string, Set<string>>(); // "src/n" → message ids (a key republished shows 2)
  for (const r of seen) {
    const list = byReader.get(r.actor_id) ?? [];
    list.push(r);
    byReader.set(r.actor_id, list);
    const key = `${r.src}/${r.n}`;
    const reader = r.actor_id.startsWith("box-") ? `${r.actor_id}:` : "";
    // Broadcast and competing share one row per message; direct/group: one per mailbox.
    const k = reader + key;
    let ids = msgIdOf.get(k);
    if (!ids) msgIdOf.set(k, (ids = new Set()));
    ids.add(r.msg_id);
  }
  for (const [k, ids] of msgIdOf)
    if (ids.size > 1) v("published twice", `${k} arrived as messages ${[...ids].join(", ")}`);

  // Deliveries troupe journaled (receive entries, all generations): tells "delivered but
  // never processed" (the actor stopped before its recording step) from a lost message.
  const journaled = new Set<string>();
  for (const j of await q<{ actor_id: string; result: Buffer | null }>(
    `SELECT actor_id, result FROM ${S}.journal WHERE kind = 'receive'
     UNION ALL SELECT actor_id, result FROM ${S}.journal_archive WHERE kind = 'receive'`,
  )) {
    try {
      const m = j.result ? decode<{ data?: Payload } | null>(j.result) : null;
      if (m?.data && typeof m.data.src === "string") journaled.add(`${j.actor_id} ${m.data.src}/${m.data.n}`);
    } catch {
      // not a workload message
    }
  }

  const missing = (reader: string, key: string, readerIds: string[] = [reader]) => {
    const where = present.get(key);
    const by = readerIds.find((r) => journaled.has(`${r} ${key}`));
    if (by) v("delivered, never processed", `${by} received ${key} but never recorded it (stopped mid-way)`);
    else if (where)
      v("lost (never delivered)", `${reader} never got ${key} (the message is still in ${where.join(",")})`);
    else
      v(
        "lost (message gone)",
        `${reader} never got ${key}, and no message row holds it (never written, or removed unread)`,
      );
  };
  const checkOrder = (reader: string, rows: typeof seen) => {
    const lastN = new Map<string, number>();
    let lastId = -1n;
    for (const r of rows) {
      const id = BigInt(r.msg_id);
      if (id <= lastId) {
        v("order", `${reader} got message ${r.msg_id} after ${lastId}`);
        break;
      }
      lastId = id;
      if ((lastN.get(r.src) ?? -1) >= r.n) {
        v("order", `${reader} got ${r.src}/${r.n} after ${r.src}/${lastN.get(r.src)}`);
        break;
      }
      lastN.set(r.src, r.n);
    }
  };
  const readers = [
    ...Array.from({ length: plan.subscribers }, (_, i) => subscriberId(i)),
    ...Array.from({ length: plan.mailboxes }, (_, i) => mailboxId(i)),
  ];
  for (const reader of readers) {
    const rows = byReader.get(reader) ?? [];
    const expected = want.get(reader) ?? new Set<string>();
    const got = new Map<string, number>();
    for (const r of rows) got.set(`${r.src}/${r.n}`, (got.get(`${r.src}/${r.n}`) ?? 0) + 1);
    for (const [key, n] of got) {
      if (!expected.has(key)) v("unexpected delivery", `${reader} got ${key}, not addressed to it`);
      else if (n > 1) v("duplicate delivery", `${reader} got ${key} ${n} times`);
    }
    for (const key of expected) if (!got.has(key)) missing(reader, key);
    checkOrder(reader, rows);
  }
  const taken = new Map<string, string[]>();
  for (let i = 0; i < plan.consumers; i++) {
    const rows = byReader.get(consumerId(i)) ?? [];
    for (const r of rows)
      taken.set(`${r.src}/${r.n}`, [...(taken.get(`${r.src}/${r.n}`) ?? []), consumerId(i)]);
    checkOrder(consumerId(i), rows);
  }
  for (const [key, by] of taken) {
    if (!competing.has(key)) v("unexpected delivery", `competing consumers got ${key}`);
    else if (by.length > 1)
      v("duplicate delivery", `competing ${key} consumed ${by.length} times (${by.join(",")})`);
  }
  const consumerIds = Array.from({ length: plan.consumers }, (_, i) => consumerId(i));
  for (const key of competing) if (!taken.has(key)) missing("competing consumers", key, consumerIds);

  // ---- the lease fence: every transactional row committed under the writer's own lease -
  const fenced = [
    ...seen.map((r) => ({
      actor: r.actor_id,
      worker: r.worker,
      owner: r.lease_owner,
      version: r.lease_version,
    })),
    ...(await q<{ actor: string; worker: string; owner: string | null; version: string | null }>(
      `SELECT saga AS actor, worker, lease_owner AS owner, lease_version::text AS version FROM chaos_saga WHERE via = 'tx' ORDER BY id`,
    )),
    ...(await q<{ actor: string; worker: string; owner: string | null; version: string | null }>(
      `SELECT actor_id AS actor, worker, lease_owner AS owner, lease_version::text AS version FROM chaos_count ORDER BY id`,
    )),
  ];
  const lastVersion = new Map<string, bigint>();
  for (const r of fenced) {
    if (r.owner !== r.worker)
      v(
        "two workers at once",
        `${r.actor}: ${r.worker} committed a transaction while the lease was ${r.owner}'s`,
      );
    const ver = BigInt(r.version ?? -1);
    if (ver < (lastVersion.get(r.actor) ?? -1n))
      v(
        "two workers at once",
        `${r.actor}: a commit under lease version ${ver} after one under ${lastVersion.get(r.actor)}`,
      );
    lastVersion.set(r.actor, ver > (lastVersion.get(r.actor) ?? -1n) ? ver : lastVersion.get(r.actor)!);
  }

  // ---- actors: finished as planned, or waiting where they should --------------------------
  const actors = new Map(
    (
      await q<{
        id: string;
        actor: string;
        status: string;
        output: Buffer | null;
        error: unknown;
        wait_kind: string | null;
      }>(`SELECT id, actor, status, output, error, wait_kind FROM ${S}.actors`)
    ).map((a) => [a.id, a]),
  );
  const out = (id: string): unknown => {
    const o = actors.get(id)?.output;
    return o ? decode(o) : undefined;
  };
  const status = (id: string, wantStatus: string, what: string) => {
    const a = actors.get(id);
    if (!a) return v("actor missing", `${what} ${id} does not exist`);
    if (a.status !== wantStatus)
      v(
        "actor state",
        `${what} ${id} is ${a.status}, expected ${wantStatus}${a.error ? ` (${JSON.stringify(a.error).slice(0, 300)})` : ""}`,
      );
  };
  for (const id of [...readers, ...Array.from({ length: plan.consumers }, (_, i) => consumerId(i))]) {
    status(id, "waiting", "consumer");
    const a = actors.get(id);
    if (a?.status === "waiting" && a.wait_kind !== "receive")
      v("actor state", `consumer ${id} waits on ${a.wait_kind}, not a receive`);
  }
  plan.publishers.forEach((sends, i) => {
    status(publisherId(i), "completed", "publisher");
    if (actors.get(publisherId(i))?.status === "completed" && out(publisherId(i)) !== sends.length)
      v(
        "actor state",
        `publisher ${publisherId(i)} returned ${String(out(publisherId(i)))}, expected ${sends.length}`,
      );
  });
  plan.churners.forEach((cycles, i) => {
    const id = churnerId(i);
    status(id, "completed", "churner");
    const o = out(id) as { seenSelf: number; goneAfterLeave: number } | undefined;
    if (o && (o.seenSelf !== cycles || o.goneAfterLeave !== cycles))
      v(
        "groups",
        `${id}: saw itself in ${o.seenSelf}/${cycles} joins and gone in ${o.goneAfterLeave}/${cycles} leaves`,
      );
  });
  const members = await q<{ group_name: string; actor_id: string; status: string }>(
    `SELECT g.group_name, g.actor_id, a.status FROM ${S}.group_members g JOIN ${S}.actors a ON a.id = g.actor_id`,
  );
  for (const m of members) {
    if (["completed", "failed", "cancelled"].includes(m.status))
      v("groups", `${m.actor_id} (${m.status}) is still a member of ${m.group_name}`);
    else if (m.group_name === CHURN) v("groups", `${m.actor_id} is still in ${CHURN} after its last leave`);
  }
  const countRows = await q<{ actor_id: string; gen: number }>(`SELECT actor_id, gen FROM chaos_count`);
  plan.counters.forEach((left, i) => {
    const id = counterId(i);
    status(id, "completed", "counter");
    if (actors.get(id)?.status === "completed" && out(id) !== left)
      v("recur", `${id} returned ${String(out(id))}, expected ${left}`);
    const gens = countRows.filter((r) => r.actor_id === id).map((r) => r.gen);
    for (let g = 0; g <= left; g++) {
      const n = gens.filter((x) => x === g).length;
      if (n !== 1) v("transactional step once", `${id} generation ${g}: ${n} committed rows`);
    }
  });
  for (const a of actors.values()) {
    if (a.status === "running" || a.status === "compensating")
      v("actor state", `${a.id} (${a.actor}) is still ${a.status} after the drain`);
  }

  // ---- sagas: steps once, compensations once each, LIFO ----------------------------------
  const sagaRows = await q<{
    id: string;
    saga: string;
    step: number;
    what: string;
    via: string;
    key: string | null;
  }>(`SELECT id::text, saga, step, what, via, key FROM chaos_saga ORDER BY id`);
  const comps = await q<{ actor_id: string; name: string; status: string }>(
    `SELECT actor_id, name, status FROM ${S}.compensations`,
  );
  const journaledSteps = new Set(
    (
      await q<{ actor_id: string; name: string }>(
        `SELECT actor_id, name FROM ${S}.journal WHERE kind IN ('step', 'tx') AND error IS NULL`,
      )
    ).map((j) => `${j.actor_id}/${j.name}`),
  );
  for (const s of plan.sagas) {
    const rows = sagaRows.filter((r) => r.saga === s.id);
    status(
      s.id,
      s.end === "fail" ? "failed" : s.end === "cancel" ? "cancelled" : "completed",
      `saga (${s.end})`,
    );
    // Which steps ran to completion: a transactional one iff its row committed, a plain one
    // iff its journal entry did. All must have, unless cancelled early (then a prefix).
    const ran = s.steps.map((kind, i) =>
      kind === "t" ? rows.some((r) => r.step === i && r.what === "do") : journaledSteps.has(`${s.id}/p${i}`),
    );
    const mayStop = s.end === "cancel" && s.cancelAt === "early";
    const firstNot = ran.indexOf(false);
    if (firstNot >= 0 && (!mayStop || ran.slice(firstNot).some(Boolean)))
      v(
        "saga",
        `${s.id} (${s.end}${s.end === "cancel" ? ` ${s.cancelAt}` : ""}): steps completed ${ran.map((r) => (r ? 1 : 0)).join("")}`,
      );
    const undoOrder: number[] = [];
    s.steps.forEach((kind, i) => {
      const dos = rows.filter((r) => r.step === i && r.what === "do");
      const undos = rows.filter((r) => r.step === i && r.what === "undo");
      if (kind === "t" && dos.length > 1)
        v("transactional step once", `${s.id} step ${i}: ${dos.length} committed rows`);
      if (s.end === "complete") {
        if (undos.length > 0) v("saga", `${s.id} completed but step ${i} was compensated`);
        return;
      }
      if (!ran[i]) {
        if (kind === "t" && undos.length > 0)
          v("saga", `${s.id} step ${i} never committed but was compensated`);
        return;
      }
      if (kind === "t" && undos.length !== 1)
        v(
          "transactional compensation once",
          `${s.id} step ${i}: ${undos.length} committed compensation rows`,
        );
      if (kind === "p") {
        if (undos.length < 1) v("compensation missing", `${s.id} plain step ${i} was never compensated`);
        if (new Set(undos.map((u) => u.key)).size > 1)
          v("saga", `${s.id} step ${i}: compensation re-runs with different idempotency keys`);
      }
    });
    if (s.end !== "complete") {
      for (const r of rows) if (r.what === "undo" && !undoOrder.includes(r.step)) undoOrder.push(r.step);
      for (let k = 1; k < undoOrder.length; k++)
        if (undoOrder[k]! > undoOrder[k - 1]!) {
          v("compensations LIFO", `${s.id}: compensated steps in order ${undoOrder.join(",")}`);
          break;
        }
      const bad = comps.filter((c) => c.actor_id === s.id && c.status !== "done");
      if (bad.length > 0)
        v(
          "compensation missing",
          `${s.id}: compensations ${bad.map((c) => `${c.name}=${c.status}`).join(", ")}`,
        );
    }
  }

  // ---- plain saga steps: committed attempts of one actor never overlap across workers ---
  const tokens = await q<{ actor_id: string; result: Buffer | null }>(
    `SELECT actor_id, result FROM ${S}.journal WHERE kind = 'step' AND name ~ '^p[0-9]+$'
     UNION ALL SELECT actor_id, result FROM ${S}.journal_archive WHERE kind = 'step' AND name ~ '^p[0-9]+$'`,
  );
  const committed = new Set(tokens.map((t) => (t.result ? String(decode(t.result)) : "")));
  const intervals = (
    await q<{ token: string; actor_id: string; step: string; worker: string; s: number; e: number | null }>(
      `SELECT token, actor_id, step, worker, extract(epoch FROM started_at) * 1000 AS s,
              extract(epoch FROM ended_at) * 1000 AS e FROM chaos_interval`,
    )
  ).filter((iv) => committed.has(iv.token));
  for (const a of intervals)
    for (const b of intervals)
      if (a.token < b.token && a.actor_id === b.actor_id && a.worker !== b.worker) {
        const ae = a.e === null ? Infinity : Number(a.e);
        const be = b.e === null ? Infinity : Number(b.e);
        if (Number(a.s) < be && Number(b.s) < ae)
          v("two workers at once", `${a.actor_id}: ${a.step}@${a.worker} overlaps ${b.step}@${b.worker}`);
      }

  const summary = [...counts].filter(([, n]) => n > 5).map(([c, n]) => `${c}: ${n} in all`);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return { violations: [...violations, ...summary], total, messages, deliveries: seen.length };
}
