import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { ActorFailedError, NonRetryableError, TroupeError, actor, type ActorContext } from "../src/index.js";
import { testTroupe } from "./helpers.js";

describe("actors run to completion", () => {
  const calls: Record<string, number> = {};
  const bump = (k: string) => (calls[k] = (calls[k] ?? 0) + 1);

  const greeter = actor("greeter", async (ctx: ActorContext, input: { name: string }) => {
    const greeting = await ctx.step("compose", () => `hello ${input.name}`);
    await ctx.sleep("50ms");
    const at = await ctx.now();
    const r = await ctx.random();
    const u = await ctx.uuid();
    return { greeting, at: at instanceof Date, r: r >= 0 && r < 1, u: /^[0-9a-f-]{36}$/.test(u) };
  });

  let attempts = 0;
  const flaky = actor("flaky", async (ctx) =>
    ctx.step(
      "sometimes",
      ({ attempt }) => {
        attempts++;
        if (attempt < 3) throw new Error(`boom ${attempt}`);
        return attempt;
      },
      { retry: { maxAttempts: 5, initialDelay: 5 } },
    ),
  );

  const fatal = actor("fatal", async (ctx) => {
    await ctx.step("no", () => {
      bump("fatal");
      throw new NonRetryableError("card declined");
    });
    return "unreachable";
  });

  const exhausted = actor("exhausted", async (ctx) => {
    try {
      await ctx.step(
        "always",
        () => {
          bump("exhausted");
          throw new Error("down");
        },
        { retry: { maxAttempts: 2, initialDelay: 1 } },
      );
    } catch (err) {
      return `caught ${(err as Error).message}`;
    }
  });

  const slowStep = actor("slow-step", async (ctx) =>
    ctx.step(
      "slow",
      ({ signal }) => new Promise((r) => setTimeout(r, 5_000).unref()).then(() => signal.aborted),
      {
        timeout: 50,
        retry: { maxAttempts: 1 },
      },
    ),
  );

  const bytes = actor(
    "bytes",
    async (ctx, input: { blob: Uint8Array; when: Date; m: Map<string, bigint> }) => {
      const echoed = await ctx.step("echo", () => input);
      return { len: echoed.blob.length, year: echoed.when.getUTCFullYear(), big: echoed.m.get("k") };
    },
  );

  const t = testTroupe({ actors: [greeter, flaky, fatal, exhausted, slowStep, bytes] });
  after(() => t.stop());

  test("steps, a durable sleep and deterministic helpers", async () => {
    await t.start();
    const ref = await t.spawn(greeter, { name: "ana" });
    const out = await ref.result({ timeout: "20s" });
    assert.deepEqual(out, { greeting: "hello ana", at: true, r: true, u: true });
    assert.equal(await ref.status(), "completed");
    const info = await t.get(ref.id);
    assert.equal(info?.status, "completed");
    assert.deepEqual(info?.input, { name: "ana" });
  });

  test("a step failing twice then succeeding is retried", async () => {
    await t.start();
    const out = await (await t.spawn(flaky, {})).result({ timeout: "20s" });
    assert.equal(out, 3);
    assert.equal(attempts, 3);
  });

  test("a non-retryable error fails the actor at once, recorded with message and stack", async () => {
    await t.start();
    const ref = await t.spawn(fatal, {});
    const err = await ref.result({ timeout: "20s" }).then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ActorFailedError);
    assert.equal(err.code, "ACTOR_FAILED");
    assert.equal(err.error.message, "card declined");
    assert.equal(err.error.code, "NON_RETRYABLE");
    assert.match(err.error.stack ?? "", /card declined/);
    assert.equal(calls.fatal, 1);
    const info = await t.get(ref.id);
    assert.equal(info?.status, "failed");
    assert.equal(info?.error?.message, "card declined");
  });

  test("exhausted retries throw the last error into the actor, which may catch it", async () => {
    await t.start();
    assert.equal(await (await t.spawn(exhausted, {})).result({ timeout: "20s" }), "caught down");
    assert.equal(calls.exhausted, 2);
  });

  test("a step timeout aborts the attempt's signal and fails with STEP_TIMEOUT", async () => {
    await t.start();
    const err = await (await t.spawn(slowStep, {})).result({ timeout: "20s" }).catch((e: unknown) => e);
    assert.ok(err instanceof ActorFailedError);
    assert.equal(err.error.code, "STEP_TIMEOUT");
  });

  test("binary and rich payloads survive the journal", async () => {
    await t.start();
    const input = {
      blob: new Uint8Array([1, 2, 3, 4]),
      when: new Date(Date.UTC(2030, 0, 1)),
      m: new Map([["k", 2n ** 70n]]),
    };
    const out = await (await t.spawn(bytes, input)).result({ timeout: "20s" });
    assert.deepEqual(out, { len: 4, year: 2030, big: 2n ** 70n });
  });

  test("errors are TroupeErrors with codes", () => {
    assert.ok(new NonRetryableError("x") instanceof TroupeError);
  });
});
