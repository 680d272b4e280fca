/**
 * The workload's actors. Each records what it did in the side tables (chaos/side.ts):
 * consumers one row per delivery, written by a transactional step together with the lease
 * row it holds (the fence); sagas one row per step and compensation; counters one row per
 * generation. The checker (chaos/checker.ts) compares these records with the plan.
 */
import { randomUUID } from "node:crypto";
import {
  NonRetryableError,
  actor,
  type ActorContext,
  type ChannelMode,
  type StepTransaction,
} from "../src/index.js";
import {
  CHURN,
  INBOX,
  JOBS,
  MAILBOXES,
  NEVER,
  NEWS,
  READY,
  SAGA_WAITING,
  mailboxId,
  type Payload,
  type SagaPlan,
  type Send,
} from "./plan.js";
import { TROUPE_SCHEMA, type SidePool } from "./side.js";

/** Set by the worker process: who we are and where plain steps write. */
let WORKER = "unset";
let SIDE: SidePool | undefined;
export function setWorkerEnv(worker: string, side: SidePool): void {
  WORKER = worker;
  SIDE = side;
}
const side = (): SidePool => {
  if (!SIDE) throw new Error("chaos actors: setWorkerEnv() was not called");
  return SIDE;
};

/** The lease this transaction commits under (read on the fenced actor row itself). */
async function lease(tx: StepTransaction, id: string): Promise<[string | null, string | null]> {
  const { rows } = await tx.query<{ lease_owner: string | null; lease_version: string | null }>(
    `SELECT lease_owner, lease_version::text FROM "${TROUPE_SCHEMA}".actors WHERE id = $1`,
    [id],
  );
  return [rows[0]?.lease_owner ?? null, rows[0]?.lease_version ?? null];
}

export interface ConsumerInput {
  ch: string;
  mode: ChannelMode;
  /** Continue-as-new after this many messages per generation. */
  every: number;
  gen: number;
  mailbox: boolean;
}

/** Subscribes once, then loops: receive → record (transactional) → every `every` messages, recur. */
export const consumer = actor("chaos-consumer", async (ctx: ActorContext, input: ConsumerInput) => {
  if (input.gen === 0) {
    await ctx.subscribe(input.ch, input.mode);
    if (input.mailbox) await ctx.join(MAILBOXES);
    await ctx.join(READY);
  }
  for (let i = 0; i < input.every; i++) {
    const m = await ctx.receive<Payload>(input.ch);
    if (m === null) throw new Error("receive without a timeout returned null");
    await ctx.transaction("record", async (tx) => {
      const [owner, version] = await lease(tx, ctx.id);
      await tx.query(
        `INSERT INTO chaos_seen (actor_id, msg_id, channel, src, n, gen, worker, lease_owner, lease_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [ctx.id, m.id, m.channel, m.data.src, m.data.n, input.gen, WORKER, owner, version],
      );
    });
  }
  return ctx.recur({ ...input, gen: input.gen + 1 });
});

/** Sends its planned messages through ctx.publish / ctx.send / ctx.broadcast, pausing with durable sleeps. */
export const publisher = actor(
  "chaos-publisher",
  async (ctx: ActorContext, input: { src: string; sends: Send[] }) => {
    for (let n = 0; n < input.sends.length; n++) {
      const s = input.sends[n]!;
      if (s.pauseMs >= 40) await ctx.sleep(s.pauseMs);
      const data: Payload = { src: input.src, n };
      if (s.kind === "b") await ctx.publish(NEWS, data);
      else if (s.kind === "c") await ctx.publish(JOBS, data);
      else if (s.kind === "d") await ctx.send(mailboxId(s.box), INBOX, data);
      else await ctx.broadcast(MAILBOXES, INBOX, data);
    }
    return input.sends.length;
  },
);

async function plainDo(actorId: string, step: number): Promise<string> {
  const token = randomUUID();
  await side().query(
    `INSERT INTO chaos_interval (token, actor_id, step, worker, started_at) VALUES ($1, $2, $3, $4, clock_timestamp())
     ON CONFLICT DO NOTHING`,
    [token, actorId, `p${step}`, WORKER],
  );
  await side().query(
    `INSERT INTO chaos_saga (saga, step, what, via, key, worker) VALUES ($1, $2, 'do', 'plain', $3, $4)`,
    [actorId, step, token, WORKER],
  );
  await new Promise((r) => setTimeout(r, 10 + Math.floor(Math.random() * 30))); // the "work"
  await side().query(`UPDATE chaos_interval SET ended_at = clock_timestamp() WHERE token = $1`, [token]);
  return token;
}

async function txRow(tx: StepTransaction, saga: string, step: number, what: "do" | "undo"): Promise<void> {
  const [owner, version] = await lease(tx, saga);
  await tx.query(
    `INSERT INTO chaos_saga (saga, step, what, via, worker, lease_owner, lease_version)
     VALUES ($1, $2, $3, 'tx', $4, $5, $6)`,
    [saga, step, what, WORKER, owner, version],
  );
}

/**
 * Plain and transactional steps with compensations, a durable sleep after each, then the
 * planned end: a non-retryable failure (compensations run LIFO), a wait forever on a
 * mailbox (the client cancels it: compensations run LIFO), or completion.
 */
export const saga = actor("chaos-saga", async (ctx: ActorContext, plan: SagaPlan) => {
  for (let i = 0; i < plan.steps.length; i++) {
    if (plan.steps[i] === "p") {
      await ctx.step(`p${i}`, () => plainDo(ctx.id, i), {
        retry: { maxAttempts: 10 },
        compensate: async (_token, info) => {
          await side().query(
            `INSERT INTO chaos_saga (saga, step, what, via, key, worker) VALUES ($1, $2, 'undo', 'plain', $3, $4)`,
            [ctx.id, i, info.idempotencyKey, WORKER],
          );
        },
      });
    } else {
      await ctx.transaction(
        `t${i}`,
        async (tx) => {
          await txRow(tx, ctx.id, i, "do");
          return i;
        },
        {
          compensate: async (_r, tx) => txRow(tx, ctx.id, i, "undo"),
        },
      );
    }
    await ctx.sleep(30 + ((i * 37) % 90));
  }
  if (plan.end === "fail") {
    await ctx.step("charge", () => {
      throw new NonRetryableError("card declined (planned)");
    });
  } else if (plan.end === "cancel") {
    await ctx.subscribe(NEVER, "direct");
    await ctx.join(SAGA_WAITING); // tells the client it may cancel now
    await ctx.receive(NEVER); // until cancelled
  }
  return "done";
});

/** Joins and leaves the churn group `cycles` times, checking its own membership each time. */
export const churner = actor("chaos-churner", async (ctx: ActorContext, input: { cycles: number }) => {
  let seenSelf = 0;
  let goneAfterLeave = 0;
  for (let c = 0; c < input.cycles; c++) {
    await ctx.join(CHURN);
    if ((await ctx.members(CHURN)).includes(ctx.id)) seenSelf++;
    await ctx.sleep(50 + ((c * 53) % 150));
    await ctx.leave(CHURN);
    if (!(await ctx.members(CHURN)).includes(ctx.id)) goneAfterLeave++;
  }
  return { seenSelf, goneAfterLeave };
});

/** Continue-as-new `left` more times, one transactional row per generation. */
export const counter = actor(
  "chaos-counter",
  async (ctx: ActorContext, input: { left: number; gen: number }) => {
    await ctx.transaction("count", async (tx) => {
      const [owner, version] = await lease(tx, ctx.id);
      await tx.query(
        `INSERT INTO chaos_count (actor_id, gen, worker, lease_owner, lease_version) VALUES ($1, $2, $3, $4, $5)`,
        [ctx.id, input.gen, WORKER, owner, version],
      );
    });
    if (input.left === 0) return input.gen;
    await ctx.sleep(100);
    return ctx.recur({ left: input.left - 1, gen: input.gen + 1 });
  },
);

export const ALL_ACTORS = [consumer, publisher, saga, churner, counter];
