/**
 * Diagnostic helper: times every pg query (by a short label for troupe's statements) and
 * every pool checkout, by monkeypatching pg from outside (src/ untouched).
 */
import pg from "pg";

export type Ev = { t0: number; t1: number; what: string; conn?: number | undefined };
export const evs: Ev[] = [];
export const now = () => performance.now();

export function label(text: string): string {
  const s = text.replace(/\s+/g, " ").trim();
  if (/^(BEGIN|COMMIT|ROLLBACK)/.test(s)) return s.split(" ")[0]!;
  if (s.includes("pg_advisory_xact_lock(") && s.includes("unnest")) return "LOCK_SOURCES_EXCLUSIVE";
  if (s.includes(".messages (channel, data, metadata, sender")) return "publishFromActor";
  if (s.startsWith("WITH l AS (SELECT pg_advisory_xact_lock_shared")) return "publish (outside)";
  if (s.startsWith("WITH mem AS")) return "broadcastGroup (outside)";
  if (s.startsWith("WITH locked AS")) return "DELIVER";
  if (s.includes("SET status = 'waiting'")) return "suspend UPDATE";
  if (s.startsWith("UPDATE") && s.includes("SET journal_version = journal_version + $3")) return "FENCE";
  if (s.startsWith("INSERT INTO") && s.includes(".journal")) return "INSERT journal entries";
  if (s.includes("SELECT channel, mode, source, cursor FROM")) return "select subscriptions";
  if (s.includes("SET claimed_by = $2")) return "takePending (claim)";
  if (s.includes("WHERE m.channel = $1 AND m.id > $2 ORDER BY m.id LIMIT 1"))
    return "takePending (broadcast)";
  if (s.includes("SET cursor = $3 WHERE actor_id")) return "advance cursor";
  if (s.includes("SET wait_seq = $3 WHERE actor_id")) return "subscriptions SET wait_seq";
  if (s.startsWith("WITH f AS ( UPDATE") && s.includes("journal_version + $3")) return "APPEND";
  if (s.includes("SELECT DISTINCT s.source FROM")) return "pendingSources (sweep)";
  if (s.includes("lease_expires_at = now() +") && s.includes("lease_owner = $1 AND status IN"))
    return "refreshLeases";
  if (s.includes("fan_receipts")) return "user INSERT (in ctx.transaction)";
  if (s.includes("system_locks")) return "system_locks";
  if (s.includes(".workers")) return "workers heartbeat";
  if (s.includes(".timers")) return "timers";
  if (s.includes("FROM pg_stat_activity")) return "(diag sampler)";
  return s.slice(0, 70);
}

let connSeq = 0;
const connIds = new WeakMap<object, number>();

/** A method patched from outside: its arguments are whatever pg's overloads accept. */
type Method = (this: object, ...args: unknown[]) => unknown;
type Callback = (err: unknown, res: unknown) => void;

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";

function queryText(arg: unknown): string {
  if (typeof arg === "string") return arg;
  const text = (arg as { text?: unknown } | undefined)?.text;
  return typeof text === "string" ? text : "";
}

/** Patches pg.Client.query (every statement, by label and connection) and pg.Pool.connect. */
export function installPgTrace(): void {
  const client = pg.Client.prototype as unknown as { query: Method };
  const origQuery = client.query;
  client.query = function (...args) {
    const text = queryText(args[0]);
    if (!connIds.has(this)) connIds.set(this, ++connSeq);
    const conn = connIds.get(this);
    const t0 = now();
    const cb = args.at(-1);
    if (typeof cb === "function") {
      // pg.Pool.query uses the callback form
      args[args.length - 1] = (err: unknown, res: unknown) => {
        evs.push({ t0, t1: now(), what: `${err ? "ERR " : ""}${label(text)}`, conn });
        (cb as Callback)(err, res);
      };
      return origQuery.apply(this, args);
    }
    const p = origQuery.apply(this, args);
    if (!isThenable(p)) return p;
    return p.then(
      (r) => (evs.push({ t0, t1: now(), what: label(text), conn }), r),
      (e: unknown) => {
        evs.push({ t0, t1: now(), what: `ERR ${label(text)}`, conn });
        throw e;
      },
    );
  };
  const pool = pg.Pool.prototype as unknown as { connect: Method };
  const origConnect = pool.connect;
  pool.connect = function (...args) {
    const t0 = now();
    const p = origConnect.apply(this, args);
    if (args.length || !isThenable(p)) return p; // the callback form: not timed
    return p.then((c) => {
      evs.push({ t0, t1: now(), what: "pool.connect (wait for a connection, tx)" });
      return c;
    });
  };
}

/** count, mean and total per label for events starting in [from, to]. */
export function breakdown(from: number, to: number, per = 1): string {
  const m = new Map<string, { n: number; ms: number; max: number }>();
  for (const e of evs) {
    if (e.t0 < from || e.t0 > to) continue;
    const v = m.get(e.what) ?? { n: 0, ms: 0, max: 0 };
    v.n++;
    v.ms += e.t1 - e.t0;
    v.max = Math.max(v.max, e.t1 - e.t0);
    m.set(e.what, v);
  }
  const lines = [
    `  ${"label".padEnd(44)} ${"count".padStart(8)} ${"mean ms".padStart(8)} ${"max ms".padStart(8)} ${"total ms".padStart(10)}`,
  ];
  for (const [k, v] of [...m].sort((a, b) => b[1].ms - a[1].ms))
    lines.push(
      `  ${k.slice(0, 44).padEnd(44)} ${(v.n / per).toFixed(per === 1 ? 0 : 2).padStart(8)} ${(v.ms / v.n).toFixed(3).padStart(8)} ${v.max.toFixed(1).padStart(8)} ${(v.ms / per).toFixed(1).padStart(10)}`,
    );
  return lines.join("\n");
}
