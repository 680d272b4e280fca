import { actor, type ActorContext } from "../src/index.js";

/**
 * The two ping-pong actors, shared by the in-process run and the worker child processes.
 *
 * The pinger measures each round trip on its own clock: t0 just before ctx.send(ping),
 * t2 just after ctx.receive(pong) resolves with the matching pong. So a round trip covers
 * the pinger's journaled send (one commit), the wakeup, the ponger's delivery + resume, its
 * journaled send, the wakeup back and the pinger's own delivery + resume. The timings are
 * kept in memory (not journaled per iteration, which would add a commit to every round
 * trip) and recorded once, durably, by a final step. If the actor function were ever
 * replayed (entered twice in this process), its in-memory timings would be wrong: the
 * result says how often the body was entered, and the runner rejects a round with
 * entries ≠ 1.
 */

export const PING = "bench-ping";
export const PONG = "bench-pong";

export interface PingResult {
  /** ping sent → pong received, per measured round trip (ms). */
  rtt: number[];
  /** the ctx.send(ping) call alone (journaled send + commit), per measured round trip (ms). */
  send: number[];
  entries: number;
}

const entered = new Map<string, number>();

export const ponger = actor("bench-ponger", async (ctx: ActorContext, input: { n: number }) => {
  await ctx.subscribe(PING, "direct");
  for (let i = 0; i < input.n; i++) {
    const m = await ctx.receive<number>(PING);
    if (!m?.sender) throw new Error("ping without sender");
    await ctx.send(m.sender, PONG, m.data);
  }
  return "done";
});

export const pinger = actor(
  "bench-pinger",
  async (ctx: ActorContext, input: { peer: string; warmup: number; n: number }): Promise<PingResult> => {
    entered.set(ctx.id, (entered.get(ctx.id) ?? 0) + 1);
    await ctx.subscribe(PONG, "direct");
    const rtt: number[] = [];
    const send: number[] = [];
    for (let i = 0; i < input.warmup + input.n; i++) {
      const t0 = performance.now();
      await ctx.send(input.peer, PING, i);
      const t1 = performance.now();
      const m = await ctx.receive<number>(PONG);
      const t2 = performance.now();
      if (m?.data !== i) throw new Error(`pong ${String(m?.data)} for ping ${i}`);
      if (i >= input.warmup) {
        rtt.push(t2 - t0);
        send.push(t1 - t0);
      }
    }
    const entries = entered.get(ctx.id) ?? 0;
    return ctx.step("timings", () => ({ rtt, send, entries }));
  },
);
