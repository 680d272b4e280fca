/**
 * ping-pong — two actors exchange direct messages; round-trip times at the end.
 *
 * "pinger" sends `ping` into ponger's mailbox and waits for the `pong` in its own; each
 * message is a durable direct message (written to Postgres, journaled by both sides) and
 * each receive parks the actor until the reply arrives. The round trip is measured with
 * `ctx.now()` (deterministic: recorded in the journal, the same value on a replay).
 *
 *   npm run example:ping-pong            # 200 round trips
 *   npm run example:ping-pong -- 1000    # as many as you like
 */
import { Troupe, actor, channel, type ActorContext } from "../../src/index.js";

const Ping = channel<{ n: number; stop?: boolean }>("ping");
const Pong = channel<{ n: number }>("pong");

const ponger = actor("ponger", async (ctx: ActorContext) => {
  await ctx.subscribe(Ping, "direct");
  let answered = 0;
  for (;;) {
    const msg = await ctx.receive(Ping);
    if (msg === null || msg.data.stop) return { answered };
    await ctx.send(msg.sender!, Pong, { n: msg.data.n });
    answered++;
  }
});

const pinger = actor("pinger", async (ctx: ActorContext, input: { peer: string; rounds: number }) => {
  await ctx.subscribe(Pong, "direct");
  const rtts: number[] = [];
  for (let n = 1; n <= input.rounds; n++) {
    const t0 = await ctx.now();
    await ctx.send(input.peer, Ping, { n });
    const reply = await ctx.receive(Pong, { timeout: "30s" });
    if (reply === null) throw new Error(`no pong for ping ${n}`);
    if (reply.data.n !== n) throw new Error(`pong ${reply.data.n} for ping ${n}`);
    rtts.push((await ctx.now()).getTime() - t0.getTime());
  }
  await ctx.send(input.peer, Ping, { n: 0, stop: true });
  return rtts;
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 200);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("usage: main.ts [rounds]");
  const troupe = new Troupe({ actors: [ponger, pinger], database: "memory://" });
  await troupe.start();

  // The peer must exist before anyone sends to it (a send to an unknown id is NOT_FOUND).
  const pong = await troupe.spawn(ponger, {}, { id: "ponger" });
  console.log(`pinger and ponger exchange ${rounds} pings and ${rounds} pongs…`);
  const started = Date.now();
  const ping = await troupe.spawn(pinger, { peer: pong.id, rounds }, { id: "pinger" });
  const rtts = await ping.result({ timeout: "10m" });
  const elapsed = Date.now() - started;
  const { answered } = await pong.result({ timeout: "30s" });

  // The first rounds pay for JIT and cold caches: leave them out of the statistics.
  const warmup = rounds > 50 ? 10 : 0;
  const measured = rtts.slice(warmup);
  const sorted = [...measured].sort((a, b) => a - b);
  const mean = measured.reduce((a, b) => a + b, 0) / measured.length;
  const last = rtts.length > 10 ? `; last: ${rtts.slice(-5).join(", ")} ms` : "";
  console.log(`first round trips: ${rtts.slice(0, 5).join(", ")} ms${last}`);
  console.log(`ponger answered ${answered} pings`);
  console.log(
    `round trip (ms${warmup ? `, after ${warmup} warm-up rounds` : ""}): p50 ${percentile(sorted, 50)}, p99 ${percentile(sorted, 99)}, ` +
      `min ${sorted[0]}, max ${sorted.at(-1)}, mean ${mean.toFixed(1)}`,
  );
  console.log(
    `${rounds} round trips in ${(elapsed / 1000).toFixed(2)} s ` +
      `(${((2 * rounds) / (elapsed / 1000)).toFixed(0)} messages/s, one process, embedded PGlite)`,
  );
  // Each receive parks the actor; the next message resumes the parked execution in memory
  // (sticky execution) instead of replaying a journal that grows with every round.
  const w = troupe.workerStats();
  if (w) console.log(`executions resumed in memory: ${w.resumes}, started fresh or by replay: ${w.replays}`);
  await troupe.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
