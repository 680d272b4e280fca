import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Troupe, TroupeError, actor, channel, type ActorDefinition } from "../src/index.js";
import { setDebugPoint } from "../src/internal/debug-points.js";
import { dropSchema, eventually, freshSchema, testTroupe } from "./helpers.js";
import { sqlRows } from "./support/internals.js";

/**
 * Regression tests for issue 10 items 5, 8, 10 and 11: hostile strings and values at public
 * entry points must be a typed TroupeError before any SQL, and a failed call changes nothing.
 * Each case here was an untyped error (a Postgres 22021 / 22P05 / 22P02 / 22008 / 23502, a
 * RangeError or a TypeError) before the fix.
 */

/** The code of the TroupeError `p` rejects with; fails on success or on an untyped error. */
async function code(p: Promise<unknown> | (() => unknown), what: string): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    assert.ok(
      err instanceof TroupeError,
      `${what}: expected a TroupeError, got ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`,
    );
    return err.code;
  }
  return assert.fail(`${what}: expected a rejection`);
}

async function rowCounts(t: Troupe): Promise<string> {
  const rows = await sqlRows<{ a: number; m: number; j: number; o: number; sub: number }>(
    t,
    `SELECT (SELECT count(*)::int FROM {schema}.actors) AS a,
            (SELECT count(*)::int FROM {schema}.messages) AS m,
            (SELECT count(*)::int FROM {schema}.journal) AS j,
            (SELECT count(*)::int FROM {schema}.outbox) AS o,
            (SELECT count(*)::int FROM {schema}.schedules) AS sub`,
  );
  return JSON.stringify(rows[0]);
}

const LONE = "a\ud800b";
const NUL = "a\u0000b";

describe("hostile input is a typed error before any SQL (issue 10)", () => {
  const echo = actor("echo", async (_ctx, input: unknown) => input);
  // Item 10: a caught typed error from tx.* leaves the transaction usable.
  const txCatch = actor("tx-catch", async (ctx) => {
    return ctx.transaction("t", async (tx) => {
      const codes: string[] = [];
      const tries: (() => Promise<unknown>)[] = [
        () => tx.publish("c", 1, { metadata: { a: "\u0000" } }),
        () => tx.publish("c", 1, { metadata: { a: LONE } }),
        () => tx.publish("c", LONE),
        () => tx.publish({ kind: "troupe.channel", name: NUL } as never, 1),
        () => tx.send(LONE, "d", 1),
        () => tx.broadcast("g", "d", 1, null as never),
        () => tx.emit({ type: NUL, data: 1 }),
        () => tx.emit({ type: "t", data: 1, source: LONE }),
      ];
      for (const f of tries) {
        try {
          await f();
          codes.push("ok");
        } catch (err) {
          codes.push(err instanceof TroupeError ? err.code : `untyped: ${String(err)}`);
        }
      }
      await tx.publish("after", "still usable");
      return codes;
    });
  });
  // ctx methods with null options and extreme dates: typed, and the actor goes on.
  const ctxBad = actor("ctx-bad", async (ctx) => {
    const codes: string[] = [];
    const tries: (() => Promise<unknown>)[] = [
      () => ctx.receive("c", null as never),
      () => ctx.receiveAny(["c"], null as never),
      () => ctx.receiveAny(42 as never),
      () => ctx.step("s", () => 1, null as never),
      () => ctx.send("x", "d", 1, null as never),
      () => ctx.publish("c", 1, null as never),
      () => ctx.sleepUntil(new Date(-8.64e15)),
      () => ctx.sleepUntil(1e300),
      () => ctx.step(LONE, () => 1),
      () => ctx.join(LONE),
      () => ctx.subscribe({ kind: "troupe.channel", name: Number.NaN } as never, "broadcast"),
      () => ctx.publish("c", 1, { metadata: { k: NUL } }),
    ];
    for (const f of tries) {
      try {
        await f();
        codes.push("ok");
      } catch (err) {
        codes.push(err instanceof TroupeError ? err.code : `untyped: ${String(err)}`);
      }
    }
    return codes;
  });

  const schema = freshSchema("hostile");
  const t = testTroupe({ actors: [echo, txCatch, ctxBad], schema });
  after(async () => {
    await t.stop();
    await dropSchema(schema);
  });

  test("names with NUL or a lone surrogate are VALIDATION (spawn, send, cancel, get, ref, outbox)", async () => {
    await t.start();
    const before = await rowCounts(t);
    for (const bad of [NUL, LONE, "\udc00"]) {
      assert.equal(await code(t.spawn(echo, 1, { id: bad }), "spawn id"), "VALIDATION");
      assert.equal(await code(t.spawn(echo, 1, { uniqueKey: bad }), "spawn uniqueKey"), "VALIDATION");
      assert.equal(await code(t.send(bad, "c", 1), "send to"), "VALIDATION");
      assert.equal(await code(t.send("x", bad, 1), "send channel"), "VALIDATION");
      assert.equal(await code(t.publish(bad, 1), "publish channel"), "VALIDATION");
      assert.equal(await code(t.cancel(bad), "cancel"), "VALIDATION");
      assert.equal(await code(t.cancel("x", bad), "cancel reason"), "VALIDATION");
      assert.equal(await code(t.get(bad), "get"), "VALIDATION");
      assert.equal(await code(t.members(bad), "members"), "VALIDATION");
      assert.equal(await code(t.outboxEvent(bad), "outboxEvent"), "VALIDATION");
      assert.equal(await code(t.redriveOutbox([bad]), "redriveOutbox"), "VALIDATION");
      assert.equal(await code(t.list({ actor: bad }), "list actor"), "VALIDATION");
      assert.equal(await code(t.list({ idContains: bad }), "list idContains"), "VALIDATION");
      assert.equal(await code(t.emitEvent({ type: "t", data: 1, id: bad }), "emitEvent id"), "VALIDATION");
    }
    assert.equal(await rowCounts(t), before);
  });

  test("payloads: NUL strings are stored, lone surrogates, deep and toJSON tricks are NOT_SERIALIZABLE", async () => {
    await t.start();
    const nullProtoKey = new Map([[Object.create(null) as object, 1]]);
    // A Map with a null-prototype object key is a fine msgpack value (it was a TypeError while
    // the codec built its error path with String(key)).
    await t.spawn(echo, nullProtoKey);
    const ref = await t.spawn(echo, { text: NUL, [NUL]: 1 });
    assert.deepEqual(await ref.result({ timeout: "20s" }), { text: NUL, [NUL]: 1 });
    const before = await rowCounts(t);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    class BigJson {
      toJSON() {
        return 1n;
      }
    }
    class NoJson {
      toJSON() {
        return undefined;
      }
    }
    const huge: unknown[] = [];
    huge.length = 2 ** 32 - 1;
    for (const [what, value] of [
      ["lone surrogate", LONE],
      ["lone surrogate key", { [LONE]: 1 }],
      ["deep", deep],
      ["toJSON → BigInt", new BigJson()],
      ["toJSON → undefined", new NoJson()],
      ["huge sparse array", huge],
    ] as const) {
      const c1 = await code(t.spawn(echo, value), `spawn ${what}`);
      assert.ok(["NOT_SERIALIZABLE", "PAYLOAD_TOO_LARGE"].includes(c1), `spawn ${what}: ${c1}`);
      const c2 = await code(t.publish("p", value), `publish ${what}`);
      assert.ok(["NOT_SERIALIZABLE", "PAYLOAD_TOO_LARGE"].includes(c2), `publish ${what}: ${c2}`);
    }
    assert.equal(await code(t.publish("p", 1, { metadata: { a: NUL } }), "metadata NUL"), "VALIDATION");
    assert.equal(await code(t.publish("p", 1, { metadata: { a: LONE } }), "metadata lone"), "VALIDATION");
    assert.equal(await rowCounts(t), before);
  });

  test("null, non-object and non-iterable options are VALIDATION", async () => {
    await t.start();
    const before = await rowCounts(t);
    const ref = t.ref("nobody");
    const calls: [string, () => unknown][] = [
      ["publish", () => t.publish("c", 1, null as never)],
      ["send", () => t.send("x", "c", 1, null as never)],
      ["broadcast", () => t.broadcast("g", "c", 1, null as never)],
      ["spawn", () => t.spawn(echo, 1, null as never)],
      ["spawn 7", () => t.spawn(echo, 1, 7 as never)],
      ["list", () => t.list(null as never)],
      ["list status", () => t.list({ status: {} as never })],
      ["stats", () => t.stats(null as never)],
      ["result", () => ref.result(null as never)],
      ["ref.send", () => ref.send("c", 1, null as never)],
      ["channel", () => channel("c", null as never)],
      ["outboxDeadLetters", () => t.outboxDeadLetters(null as never)],
      [
        "history",
        () => {
          const it = t.history("x", null as never);
          return it[Symbol.asyncIterator]().next();
        },
      ],
      ["readStream", () => t.readStream(null as never)],
      ["emitEvent", () => t.emitEvent(null as never)],
      ["redriveOutbox", () => t.redriveOutbox({} as never)],
    ];
    for (const [what, f] of calls) assert.equal(await code(f, what), "VALIDATION", what);
    // Found by the fuzzer (seed 2103211516): options whose property reads throw.
    const exploding = new Proxy(
      {},
      {
        ownKeys() {
          throw new TypeError("proxy exploded");
        },
        get() {
          throw new TypeError("proxy exploded");
        },
      },
    );
    const proxied: [string, () => unknown][] = [
      ["actor()", () => actor("p", async () => 1, exploding as never)],
      ["publish", () => t.publish("c", 1, exploding)],
      ["spawn", () => t.spawn(echo, 1, exploding)],
      ["list", () => t.list(exploding)],
      ["result", () => ref.result(exploding)],
    ];
    for (const [what, f] of proxied) assert.equal(await code(f, what), "VALIDATION", what);
    assert.equal(await rowCounts(t), before);
  });

  test("extreme but valid Dates are VALIDATION in stats, list and schedule", async () => {
    await t.start();
    for (const d of [new Date(-8.64e15), new Date(8.64e15), new Date(Date.UTC(-5000, 0, 1))]) {
      assert.equal(await code(t.stats({ since: d }), `stats ${d.getTime()}`), "VALIDATION");
      assert.equal(await code(t.list({ startedAfter: d }), `list after ${d.getTime()}`), "VALIDATION");
      assert.equal(await code(t.list({ startedBefore: d }), `list before ${d.getTime()}`), "VALIDATION");
      assert.equal(
        await code(t.schedule("s", { actor: echo, every: "1h", startAt: d }), "schedule startAt"),
        "VALIDATION",
      );
    }
  });

  test("ctx calls with null options, extreme dates and forged handles reject typed; the actor goes on", async () => {
    await t.start();
    const ref = await t.spawn(ctxBad, null);
    const codes = await ref.result({ timeout: "20s" });
    assert.deepEqual(
      codes.filter((c) => c !== "VALIDATION"),
      [],
      `codes: ${codes.join(", ")}`,
    );
  });

  test("a caught typed error from tx.* leaves the transaction usable (item 10)", async () => {
    await t.start();
    const ref = await t.spawn(txCatch, null);
    const codes = await ref.result({ timeout: "20s" });
    assert.deepEqual(
      codes.filter((c) => c !== "VALIDATION" && c !== "NOT_SERIALIZABLE"),
      [],
      `codes: ${codes.join(", ")}`,
    );
  });

  test("forged channel handles are validated like names (item 11)", async () => {
    await t.start();
    const before = await rowCounts(t);
    const forged = [
      { kind: "troupe.channel", name: NUL },
      { kind: "troupe.channel", name: Number.NaN },
      { kind: "troupe.channel", name: "ok", durable: "yes" },
      { kind: "troupe.channel", name: "ok", schema: 5 },
    ] as never[];
    for (const h of forged) {
      assert.equal(await code(t.publish(h, 1), "publish forged"), "VALIDATION");
      assert.equal(await code(t.send("x", h, 1), "send forged"), "VALIDATION");
      assert.equal(await code(t.broadcast("g", h, 1), "broadcast forged"), "VALIDATION");
      assert.equal(await code(() => t.listen(h, () => {}), "listen forged"), "VALIDATION");
    }
    assert.equal(await rowCounts(t), before);
  });
});

describe("one bad spawn does not disable a worker (issue 10 item 8)", () => {
  const good = actor("good", async () => "ran");
  const schema = freshSchema("badspawn");
  const t = testTroupe({ actors: [good], schema });
  after(async () => {
    await t.stop();
    await dropSchema(schema);
  });

  test("a forged definition with a bad name is VALIDATION, is not registered, and the worker keeps running actors", async () => {
    await t.start();
    const forged = (name: unknown) =>
      ({ kind: "troupe.actor", name, fn: async () => 1, options: {} }) as unknown as ActorDefinition;
    for (const name of ["a b\u0000", LONE, 7, "", "x".repeat(500)]) {
      assert.equal(await code(t.spawn(forged(name), {}), `spawn ${String(name)}`), "VALIDATION");
      assert.equal(
        await code(t.schedule("s", { actor: forged(name), every: "1h" }), `schedule ${String(name)}`),
        "VALIDATION",
      );
    }
    const noFn = { kind: "troupe.actor", name: "nofn", options: {} } as unknown as ActorDefinition;
    assert.equal(await code(t.spawn(noFn, {}), "no fn"), "VALIDATION");
    // A good definition with bad spawn options is not registered either.
    const later = actor("later", async () => 1);
    assert.equal(await code(t.spawn(later, 1, { id: NUL }), "bad id"), "VALIDATION");
    assert.equal(await code(t.spawn("later", 1), "not registered"), "UNKNOWN_ACTOR");
    const ref = await t.spawn(good, null);
    assert.equal(await ref.result({ timeout: "20s" }), "ran");
    await eventually(async () => (await t.get(ref.id))?.status === "completed", "good completed");
  });
});

describe("credentials never appear in error messages (docs/security.md)", () => {
  test("a bad database URL or sink URL is reported without its password", async () => {
    const { httpSink } = await import("../src/outbox/http-sink.js");
    const { redactCredentials } = await import("../src/options.js");
    const bad: [string, () => unknown][] = [
      ["database", () => new Troupe({ database: "mysql://app:s3cret-pw@db.example/prod" })],
      ["httpSink", () => httpSink({ url: "ftp//app:s3cret-pw@sink.example" })],
    ];
    for (const [what, f] of bad) {
      let message = "";
      try {
        f();
      } catch (err) {
        assert.ok(err instanceof TroupeError, `${what}: ${String(err)}`);
        message = err.message;
      }
      assert.ok(message.length > 0, `${what}: expected an error`);
      assert.ok(!message.includes("s3cret-pw"), `${what}: the message shows the password: ${message}`);
    }
    assert.equal(
      redactCredentials("postgres://troupe:pw@h:5432/db and redis://:tok@r:6379 and https://tok@x/y"),
      "postgres://troupe:***@h:5432/db and redis://:***@r:6379 and https://***@x/y",
    );
  });
});

describe("dashboard query parameters Postgres cannot hold are VALIDATION, not a 500", () => {
  test("found by npm run fuzz (FUZZ_SEED=982050688): /api/channels?cursor=%00 was a 500", async () => {
    const { startDashboard } = await import("../src/dashboard/index.js");
    const schema = freshSchema("hostiledash");
    const t = testTroupe({ schema, worker: false });
    await t.start();
    const dash = await startDashboard(t, { port: 0, host: "127.0.0.1" });
    try {
      for (const path of [
        "/api/channels?cursor=%00",
        "/api/channels?cursor=a%20b",
        "/api/actors?actor=%00",
        "/api/actors?idContains=a%00",
        "/api/stats?actor=%00",
      ]) {
        const res = await fetch(new URL(path, dash.url));
        const body = (await res.json()) as { error?: { code?: string } };
        assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
        assert.equal(body.error?.code, "VALIDATION", path);
      }
    } finally {
      await dash.close();
      await t.stop();
      await dropSchema(schema);
    }
  });
});

describe("a transaction whose timeout fires while it commits (found by the fuzzer on Postgres)", () => {
  // Counterexample (seed 20261204 on the real server): ctx.transaction("#u3", …, { timeout:
  // "20ms", compensate }) → untyped "duplicate key value violates unique constraint
  // journal_pkey": the timeout recorded an error for the step's position while the step's
  // own transaction went on and committed its entry there.
  const slow = actor("slow-commit", async (ctx) => {
    try {
      await ctx.transaction(
        "t",
        async (tx) => {
          await tx.publish("slow-commit-out", 1);
          return "committed";
        },
        { timeout: "50ms" },
      );
      return "no error";
    } catch (err) {
      return err instanceof TroupeError ? err.code : `untyped: ${String(err)}`;
    }
  });
  const schema = freshSchema("slowtx");
  const t = testTroupe({
    actors: [slow],
    schema,
  });
  // The window: the step's fn has returned, its transaction has not committed yet.
  setDebugPoint(t, async (name) => {
    if (name === "tx:after-fn") await new Promise((r) => setTimeout(r, 300));
  });
  after(async () => {
    await t.stop();
    await dropSchema(schema);
  });

  test("the step is STEP_TIMEOUT, its transaction rolled back, one journal entry", async () => {
    await t.start();
    const ref = await t.spawn(slow, null);
    assert.equal(await ref.result({ timeout: "20s" }), "STEP_TIMEOUT");
    const rows = await sqlRows<{ n: number; errors: number }>(
      t,
      `SELECT count(*)::int AS n, count(error)::int AS errors FROM {schema}.journal WHERE actor_id = $1 AND seq = 0`,
      [ref.id],
    );
    assert.deepEqual({ ...rows[0] }, { n: 1, errors: 1 });
    const msgs = await sqlRows<{ n: number }>(
      t,
      `SELECT count(*)::int AS n FROM {schema}.messages WHERE channel = 'slow-commit-out'`,
    );
    assert.equal(msgs[0]!.n, 0, "the timed-out transaction's publish was rolled back");
  });
});
