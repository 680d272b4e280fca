import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import { actor, type ActorContext } from "../src/index.js";
import { REDIS_URL, eventually, needsPostgres, restartable } from "./helpers.js";

const skip = needsPostgres || (REDIS_URL ? false : "needs Redis (set TROUPE_TEST_REDIS_URL)");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A Redis of this test's own (scripts/redis-ctl.sh on a spare port), so the shared one stays up. */
function redisCtl(action: "start" | "stop", port: number): void {
  const res = spawnSync("bash", ["scripts/redis-ctl.sh", action], {
    encoding: "utf8",
    env: { ...process.env, REDIS_PORT: String(port) },
  });
  if (res.status !== 0) throw new Error(`redis-ctl ${action} on ${port} failed: ${res.stderr}`);
}

function subscriberCount(port: number): number {
  const res = spawnSync(
    "redis-cli",
    ["-h", "127.0.0.1", "-p", String(port), "PUBSUB", "CHANNELS", "troupe:*"],
    {
      encoding: "utf8",
    },
  );
  return res.stdout.split("\n").filter((l) => l.startsWith("troupe:")).length;
}

/** Clients connected to the Redis on `port`, not counting the redis-cli asking. */
function connectionCount(port: number): number {
  const res = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "CLIENT", "LIST"], {
    encoding: "utf8",
  });
  return res.stdout.split("\n").filter((l) => l.startsWith("id=")).length - 1;
}

describe("Redis wakeups", { skip }, () => {
  const echo = actor("wk-echo", async (ctx: ActorContext) => {
    await ctx.subscribe("wk-in", "direct");
    const m = await ctx.receive<string>("wk-in");
    return m?.data;
  });

  test("a worker started while Redis is down subscribes once Redis is up and hears wakeups at once", async () => {
    const port = await freePort();
    const redis = `redis://127.0.0.1:${port}`;
    const db = await restartable();
    // Polling every hour: only a Redis wakeup can deliver within the test.
    const worker = db.make({ actors: [echo], redis, pollInterval: "1h" });
    let client: ReturnType<typeof db.make> | undefined;
    try {
      await worker.start(); // Redis is not running yet
      const ref = await worker.spawn(echo, {}, { id: "wk-1" });
      await eventually(async () => (await worker.get(ref.id))?.status === "waiting", "parked in its receive");
      redisCtl("start", port);
      await eventually(
        () => subscriberCount(port) === 1,
        "the worker subscribed after Redis came up",
        15_000,
      );
      client = db.make({ actors: [echo], redis, worker: false });
      await client.start();
      // The client's publish connection must be up too, or its hint is dropped (by design):
      // two connections per Troupe (publish, subscribe).
      await eventually(() => connectionCount(port) === 4, "the client connected to Redis", 15_000);
      await client.send(ref.id, "wk-in", "hello");
      assert.equal(await ref.result({ timeout: "10s" }), "hello");
    } finally {
      await client?.stop();
      await worker.stop();
      redisCtl("stop", port);
      await db.cleanup();
    }
  });
});
