/**
 * A worker process for the two-process ping-pong: runs ONE of the two actor types, so the
 * pinger and the ponger necessarily live on different workers. Driven by the parent over IPC:
 *   → { cmd: "spawn", role, id, input }   ← { type: "spawned" }
 *   → { cmd: "result", id }               ← { type: "result", value } | { type: "error", message }
 *   → { cmd: "stop" }                     ← { type: "stopped" }
 * Environment: BENCH_ROLE (ping|pong), BENCH_SCHEMA, BENCH_DATABASE_URL, BENCH_REDIS_URL.
 */
import { Troupe, type LogLevel } from "../src/index.js";
import { pinger, ponger, type PingResult } from "./ping-pong-actors.js";

/** What the parent sends. */
export interface WorkerCommand {
  cmd: "spawn" | "result" | "stop";
  id?: string;
  input?: unknown;
}

/** What this process reports back. */
export type WorkerReply =
  | { type: "log"; level: LogLevel; msg: string; fields?: Record<string, unknown> | undefined }
  | { type: "ready" | "spawned" | "stopped" }
  | { type: "result"; value: PingResult }
  | { type: "error"; message: string };

const role = process.env.BENCH_ROLE;
const schema = process.env.BENCH_SCHEMA;
if ((role !== "ping" && role !== "pong") || !schema || !process.send) {
  throw new Error("ping-pong-worker: run by benchmarks/ping-pong.ts (BENCH_ROLE, BENCH_SCHEMA, IPC)");
}
const send = (m: WorkerReply) => process.send!(m);

const troupe = new Troupe({
  actors: [role === "ping" ? pinger : ponger],
  database: process.env.BENCH_DATABASE_URL,
  redis: process.env.BENCH_REDIS_URL,
  schema,
  // BENCH_PREPARED=0: measure without named prepared statements (the option defaults to on).
  preparedStatements: process.env.BENCH_PREPARED !== "0",
  workerId: `bench-${role}-${process.pid}`,
  logger: (level, msg, fields) => {
    if (level === "warn" || level === "error") send({ type: "log", level, msg, fields });
  },
});

process.on("message", (m: WorkerCommand) => {
  void (async () => {
    try {
      if (m.cmd === "spawn") {
        if (role === "ping") await troupe.spawn(pinger, m.input as never, { id: m.id! });
        else await troupe.spawn(ponger, m.input as never, { id: m.id! });
        send({ type: "spawned" });
      } else if (m.cmd === "result") {
        const value = await troupe
          .ref<PingResult>(m.id!)
          .result({ timeout: process.env.BENCH_ROUND_TIMEOUT ?? "3m" });
        send({ type: "result", value });
      } else if (m.cmd === "stop") {
        await troupe.stop();
        send({ type: "stopped" });
        process.disconnect();
      }
    } catch (err) {
      send({ type: "error", message: String(err) });
    }
  })();
});

await troupe.start();
send({ type: "ready" });
