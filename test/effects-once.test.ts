import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { after, describe, test } from "node:test";
import { once } from "node:events";
import { actor, type ActorContext } from "../src/index.js";
import { PG_URL, REDIS_URL, freshSchema, dropSchema, testTroupe } from "./helpers.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { boundSql, databaseOf, storageOf } from "./support/internals.js";

// Same definition as the fixture: the test process finishes what the killed worker began.
const announcer = actor("announcer", async (ctx: ActorContext) => {
  await ctx.publish("effects-once", { n: 1 });
  await ctx.send(ctx.id, "self", "note");
  await ctx.step("after", () => "ok");
  return "done";
});

function startWorker(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "test/fixtures/effects-worker.ts"], {
    env: { ...process.env, ...env },
    stdio: "inherit",
  });
}

describe("effects once across kill -9", () => {
  const children: ChildProcess[] = [];
  after(() => children.forEach((c) => c.kill("SIGKILL")));

  for (const killAt of ["publish:after", "send:after"]) {
    test(`a worker killed right after ${killAt.split(":")[0]} (before its next journal write) does not send twice`, async () => {
      const schema = freshSchema();
      const dir = PG_URL ? undefined : await mkdtemp(join(tmpdir(), "troupe-effects-"));
      const db = PG_URL ?? dir!;
      try {
        const child = startWorker({
          DB: db,
          SCHEMA: schema,
          KILL_AT: killAt,
          SPAWN: "a-1",
          ...(REDIS_URL ? { REDIS: REDIS_URL } : {}),
        });
        children.push(child);
        const [, signal] = (await once(child, "exit")) as [number | null, string | null];
        assert.equal(signal, "SIGKILL", "the worker died at the debug point");

        const t = testTroupe({ database: db, schema, actors: [announcer], lease: "1s" });
        try {
          await t.start();
          assert.equal(await t.ref("a-1").result({ timeout: "30s" }), "done");
          const { rows } = await databaseOf(t).query<{ channel: string; n: number }>(
            boundSql(
              t,
              "SELECT channel, count(*)::int AS n FROM {schema}.messages GROUP BY channel ORDER BY channel",
            ),
          );
          assert.deepEqual(rows, [
            { channel: "effects-once", n: 1 },
            { channel: "self:a-1", n: 1 },
          ]);
          const journal = await storageOf(t).journal.page("a-1", 0, 100);
          assert.deepEqual(
            journal.map((e) => e.kind),
            ["publish", "send", "step"],
          );
          assert.equal(t.workerStats()!.replays, 1, "the survivor replayed the journal");
        } finally {
          await t.stop();
        }
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
        else await dropSchema(schema);
      }
    });
  }
});
