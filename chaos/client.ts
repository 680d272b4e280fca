/**
 * The chaos client process: the workload's outside-actor side (a `worker: false` Troupe).
 * It spawns every actor, waits until the consumers are subscribed, then sends its planned
 * traffic (troupe.publish / send / broadcast, each with an idempotency key) and cancels the
 * sagas planned to be cancelled once they wait. Every call that fails with a retryable
 * error (DATABASE_UNAVAILABLE, or a raw connection error on code without that type) is
 * retried with the same idempotency key, so the checker can still demand exactly-once.
 *
 * Environment: CHAOS_DB, CHAOS_REDIS, CHAOS_SEED, CHAOS_ROUND, CHAOS_SHORT ("1"),
 * CHAOS_RESUME (the first send not yet acknowledged, after a restart).
 * Prints JSON lines: consumers-ready, spawned, ack {n}, cancelled {id}, retry {what, error},
 * error {what, error} (a non-retryable failure: a violation), done.
 */
import { Troupe } from "../src/index.js";
import { ALL_ACTORS, consumer, churner, counter, publisher, saga } from "./actors.js";
import {
  CLIENT,
  INBOX,
  JOBS,
  MAILBOXES,
  NEWS,
  READY,
  SAGA_WAITING,
  churnerId,
  consumerId,
  counterId,
  mailboxId,
  publisherId,
  roundPlan,
  subscriberId,
  type Payload,
} from "./plan.js";
import { TROUPE_SCHEMA, isConnectionError } from "./side.js";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`chaos client: ${name} is required`);
  return v;
};
const emit = (event: string, data: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ event, worker: CLIENT, at: Date.now(), ...data }) + "\n");
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const plan = roundPlan(Number(env("CHAOS_SEED")), Number(env("CHAOS_ROUND")), {
  short: process.env.CHAOS_SHORT === "1",
});
const resume = Number(process.env.CHAOS_RESUME ?? 0);

const troupe = new Troupe({
  actors: ALL_ACTORS,
  worker: false,
  database: env("CHAOS_DB"),
  redis: env("CHAOS_REDIS"),
  schema: TROUPE_SCHEMA,
  poolSize: 4,
  logger: () => {},
});

/** Runs `call` until it succeeds or fails with a non-retryable error (reported, then rethrown). */
async function retrying<T>(what: string, call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 90_000;
  let delay = 100;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const retryable = isConnectionError(err);
      if (!retryable || Date.now() > deadline) {
        emit("error", { what, error: describe(err), retryable });
        throw err;
      }
      emit("retry", { what, error: describe(err) });
      await pause(delay);
      delay = Math.min(delay * 2, 2000);
    }
  }
}

function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  return `${e?.name ?? "Error"}${e?.code ? ` [${e.code}]` : ""}: ${String(e?.message ?? err).slice(0, 200)}`;
}

async function spawnAll(): Promise<void> {
  const consumers = [
    ...Array.from({ length: plan.subscribers }, (_, i) => ({
      id: subscriberId(i),
      ch: NEWS,
      mode: "broadcast" as const,
      mailbox: false,
    })),
    ...Array.from({ length: plan.consumers }, (_, i) => ({
      id: consumerId(i),
      ch: JOBS,
      mode: "competing" as const,
      mailbox: false,
    })),
    ...Array.from({ length: plan.mailboxes }, (_, i) => ({
      id: mailboxId(i),
      ch: INBOX,
      mode: "direct" as const,
      mailbox: true,
    })),
  ];
  for (const c of consumers)
    await retrying(`spawn ${c.id}`, () =>
      troupe.spawn(
        consumer,
        { ch: c.ch, mode: c.mode, every: plan.recurEvery, gen: 0, mailbox: c.mailbox },
        { id: c.id },
      ),
    );
  for (;;) {
    const members = await retrying("members", () => troupe.members(READY));
    if (members.length >= consumers.length) break;
    await pause(100);
  }
  emit("consumers-ready", { count: consumers.length });
  const others: [string, () => Promise<unknown>][] = [
    ...plan.publishers.map((sends, i): [string, () => Promise<unknown>] => [
      publisherId(i),
      () => troupe.spawn(publisher, { src: publisherId(i), sends }, { id: publisherId(i) }),
    ]),
    ...plan.sagas.map((s): [string, () => Promise<unknown>] => [
      s.id,
      () => troupe.spawn(saga, s, { id: s.id }),
    ]),
    ...plan.churners.map((cycles, i): [string, () => Promise<unknown>] => [
      churnerId(i),
      () => troupe.spawn(churner, { cycles }, { id: churnerId(i) }),
    ]),
    ...plan.counters.map((left, i): [string, () => Promise<unknown>] => [
      counterId(i),
      () => troupe.spawn(counter, { left, gen: 0 }, { id: counterId(i) }),
    ]),
  ];
  for (const [id, call] of others) await retrying(`spawn ${id}`, call);
  emit("spawned", { count: consumers.length + others.length });
}

async function traffic(): Promise<void> {
  for (let n = resume; n < plan.client.length; n++) {
    const s = plan.client[n]!;
    await pause(s.pauseMs);
    const data: Payload = { src: CLIENT, n };
    const idempotencyKey = `${CLIENT}:${n}`;
    await retrying<unknown>(`send #${n} (${s.kind})`, () => {
      if (s.kind === "b") return troupe.publish(NEWS, data, { idempotencyKey });
      if (s.kind === "c") return troupe.publish(JOBS, data, { idempotencyKey });
      if (s.kind === "d") return troupe.send(mailboxId(s.box), INBOX, data, { idempotencyKey });
      return troupe.broadcast(MAILBOXES, INBOX, data, { idempotencyKey });
    });
    emit("ack", { n });
  }
}

async function cancels(): Promise<void> {
  const toCancel = plan.sagas.filter((s) => s.end === "cancel");
  const pending = toCancel.map((s) => s.id);
  const early = new Set(toCancel.filter((s) => s.cancelAt === "early").map((s) => s.id));
  const deadline = Date.now() + 120_000;
  while (pending.length > 0 && Date.now() < deadline) {
    const atWait = new Set(await retrying("members", () => troupe.members(SAGA_WAITING)));
    for (const id of [...pending]) {
      const info = await retrying(`get ${id}`, () => troupe.get(id));
      // Early: between two steps (a durable sleep), mid-flight; otherwise at its last wait.
      const now = early.has(id) ? info?.status === "waiting" : atWait.has(id);
      if (now || info?.status === "cancelled" || info?.status === "compensating") {
        await retrying(`cancel ${id}`, () => troupe.cancel(id, "chaos: planned cancel"));
        pending.splice(pending.indexOf(id), 1);
        emit("cancelled", { id });
      } else if (info && (info.status === "completed" || info.status === "failed")) {
        emit("error", { what: `cancel ${id}`, error: `saga is ${info.status} before its cancel` });
        pending.splice(pending.indexOf(id), 1);
      }
    }
    await pause(200);
  }
  if (pending.length > 0) emit("error", { what: "cancels", error: `never waiting: ${pending.join(",")}` });
}

await retrying("start", () => troupe.start());
await spawnAll();
await Promise.all([traffic(), cancels()]);
emit("done");
await troupe.stop();
process.exit(0);
