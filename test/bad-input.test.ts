import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  ActorFailedError,
  NotStartedError,
  PayloadTooLargeError,
  SchemaMissingError,
  SchemaTooNewError,
  SerializationError,
  Troupe,
  TroupeError,
  UnknownActorError,
  ValidationError,
  actor,
  type TroupeOptions,
} from "../src/index.js";
import { dropSchema, freshSchema, testTroupe } from "./helpers.js";
import { countActors, countJournal, persistentBackend } from "./fixtures/durability-backend.js";
import { boundSql, databaseOf } from "./support/internals.js";

/** Asserts `err` is a TroupeError of class `cls` with `code`. */
function assertTroupeError(
  err: unknown,
  cls: new (...args: never[]) => TroupeError,
  code: string,
  what: string,
): void {
  assert.ok(err instanceof TroupeError, `${what}: expected a TroupeError, got ${String(err)}`);
  assert.ok(err instanceof cls, `${what}: expected ${cls.name}, got ${err.constructor.name}: ${err.message}`);
  assert.equal(err.code, code, `${what}: code`);
}

/** The error a promise rejects with (fails if it resolves). */
async function rejection(p: Promise<unknown>, what: string): Promise<unknown> {
  return p.then(
    (v) => assert.fail(`${what}: expected a rejection, got ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
}

/** The error a synchronous call throws (fails if it returns). */
function thrown(fn: () => unknown, what: string): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return assert.fail(`${what}: expected a throw`);
}

describe("bad input gets a typed error and changes nothing", () => {
  let echoRuns = 0;
  const echo = actor("echo", async (ctx, input: unknown) => {
    await ctx.step("count", () => ++echoRuns);
    return input;
  });
  const badSleep = actor("bad-sleep", async (ctx) => {
    await ctx.step("before", () => "ok");
    await ctx.sleep("x");
    return "unreachable";
  });
  // Bad arguments to ctx calls: each rejects with VALIDATION and consumes no journal position.
  const innerBad = actor("inner-bad", async (ctx) => {
    const attempts: (() => Promise<unknown>)[] = [
      () => ctx.step("", () => 1),
      () => ctx.step("x", 42 as unknown as () => number),
      () => ctx.step("x", () => 1, { timeout: "soon" }),
      () => ctx.step("x", () => 1, { retry: { maxAttempts: 0 } }),
      () => ctx.step("x", () => 1, { retry: { initialDelay: "5 parsecs" } }),
      () => ctx.transaction("", async () => 1),
      () => ctx.sleepUntil(new Date(Number.NaN)),
    ];
    const codes: string[] = [];
    for (const attempt of attempts) {
      try {
        await attempt();
        codes.push("no error");
      } catch (err) {
        codes.push(err instanceof TroupeError ? err.code : `not a TroupeError: ${String(err)}`);
      }
    }
    const ok = await ctx.step("ok", () => "fine");
    return { codes, ok };
  });
  const bigStep = actor("big-step", async (ctx) => {
    await ctx.step("big", () => "x".repeat(1000));
    return "unreachable";
  });
  const fnStep = actor("fn-step", async (ctx) => {
    await ctx.step("fn", () => () => 1);
    return "unreachable";
  });
  const bigOutput = actor("big-output", async () => "x".repeat(1000));

  // Promise-style error handling must see the validation error as a rejection.
  const catchingSleep = actor("catching-sleep", async (ctx) =>
    ctx.sleep("x").then(
      () => "slept",
      (e: unknown) => (e instanceof TroupeError ? e.code : `not a TroupeError: ${String(e)}`),
    ),
  );

  const schema = freshSchema("bad");
  const t = testTroupe({
    actors: [echo, badSleep, catchingSleep, innerBad, bigStep, fnStep, bigOutput],
    schema,
    maxPayloadBytes: 256,
  });
  after(async () => {
    await t.stop();
    await dropSchema(schema);
  });

  test("spawn of an unknown actor name is UNKNOWN_ACTOR", async () => {
    await t.start();
    const before = await countActors(t);
    const err = await rejection(t.spawn("no-such-actor", {}, { id: "unknown-1" }), "unknown actor");
    assertTroupeError(err, UnknownActorError, "UNKNOWN_ACTOR", "unknown actor");
    assert.equal(await countActors(t), before);
    assert.equal(await t.get("unknown-1"), null);
  });

  test("bad actor ids and uniqueKeys are VALIDATION", async () => {
    await t.start();
    const before = await countActors(t);
    const badIds: [string, unknown][] = [
      ["empty", ""],
      ["300 characters", "x".repeat(300)],
      ["a space", "a b"],
      ["a newline", "a\nb"],
      ["a tab", "a\tb"],
      ["a number", 42],
      ["null", null],
      ["an object", { id: "x" }],
    ];
    for (const [what, id] of badIds) {
      const err = await rejection(t.spawn(echo, { ok: true }, { id: id as string }), `id ${what}`);
      assertTroupeError(err, ValidationError, "VALIDATION", `id ${what}`);
      const keyErr = await rejection(
        t.spawn(echo, { ok: true }, { uniqueKey: id as string }),
        `uniqueKey ${what}`,
      );
      assertTroupeError(keyErr, ValidationError, "VALIDATION", `uniqueKey ${what}`);
      const getErr = await rejection(t.get(id as string), `get(${what})`);
      assertTroupeError(getErr, ValidationError, "VALIDATION", `get(${what})`);
    }
    assert.equal(await countActors(t), before);
    assert.equal(echoRuns, 0);
    // The limit is a limit, not an off-by-one: 255 characters are fine.
    const longest = "y".repeat(255);
    const ref = await t.spawn(echo, 1, { id: longest });
    assert.equal(await ref.result({ timeout: "20s" }), 1);
    assert.equal(await countActors(t), before + 1);
  });

  test("bad durations are VALIDATION", async () => {
    await t.start();
    const base: TroupeOptions = { database: "memory://", schema: "unused", logger: () => {} };
    const badOptions: [string, TroupeOptions][] = [
      ['lease "5 parsecs"', { lease: "5 parsecs" }],
      ["lease -1", { lease: -1 }],
      ["lease NaN", { lease: Number.NaN }],
      ["lease Infinity", { lease: Number.POSITIVE_INFINITY }],
      ['pollInterval "soon"', { pollInterval: "soon" }],
      ['shutdownTimeout "1 fortnight"', { shutdownTimeout: "1 fortnight" }],
    ];
    for (const [what, o] of badOptions) {
      const err = thrown(() => new Troupe({ ...base, ...o }), what);
      assertTroupeError(err, ValidationError, "VALIDATION", what);
    }

    const before = await countActors(t);
    const done = await t.spawn(echo, "x", { id: "duration-ref" });
    assert.equal(await done.result({ timeout: "20s" }), "x");
    for (const timeout of ["soon", -5, "5 parsecs"]) {
      const err = await rejection(done.result({ timeout }), `result timeout ${String(timeout)}`);
      assertTroupeError(err, ValidationError, "VALIDATION", `result timeout ${String(timeout)}`);
    }
    assert.equal(await countActors(t), before + 1);
  });

  test('ctx.sleep("x") fails the actor with VALIDATION and journals nothing for the sleep', async () => {
    await t.start();
    const ref = await t.spawn(badSleep, {}, { id: "bad-sleep-1" });
    const err = await rejection(ref.result({ timeout: "20s" }), "bad sleep");
    assert.ok(err instanceof ActorFailedError, `expected ActorFailedError, got ${String(err)}`);
    assert.equal(err.error.code, "VALIDATION");
    const info = await t.get(ref.id);
    assert.equal(info?.status, "failed");
    assert.equal(info?.error?.code, "VALIDATION");
    assert.equal(await countJournal(t, ref.id), 1, "only the step before the bad sleep is journaled");
    const timers = await databaseOf(t).query<{ n: number }>(
      boundSql(t, "SELECT count(*)::int AS n FROM {schema}.timers WHERE actor_id = $1"),
      [ref.id],
    );
    assert.equal(timers.rows[0]?.n, 0, "no timer for the bad sleep");
  });

  test("ctx.sleep with a bad duration rejects (like every ctx call) rather than throwing synchronously", async () => {
    await t.start();
    const ref = await t.spawn(catchingSleep, {}, { id: "catching-sleep-1" });
    assert.equal(await ref.result({ timeout: "20s" }), "VALIDATION");
  });

  test("bad arguments to ctx calls are VALIDATION and journal nothing", async () => {
    await t.start();
    const ref = await t.spawn(innerBad, {}, { id: "inner-bad-1" });
    const out = await ref.result({ timeout: "20s" });
    assert.deepEqual(out, { codes: Array(7).fill("VALIDATION"), ok: "fine" });
    const { rows } = await databaseOf(t).query<{ seq: number; name: string }>(
      boundSql(t, "SELECT seq, name FROM {schema}.journal WHERE actor_id = $1 ORDER BY seq"),
      [ref.id],
    );
    assert.deepEqual(
      rows.map((r) => [Number(r.seq), r.name]),
      [[0, "ok"]],
    );
  });

  test("a step result or actor output that cannot be stored fails the actor with its code", async () => {
    await t.start();
    const cases: [string, string][] = [
      ["big-step", "PAYLOAD_TOO_LARGE"],
      ["fn-step", "NOT_SERIALIZABLE"],
      ["big-output", "PAYLOAD_TOO_LARGE"],
    ];
    for (const [name, code] of cases) {
      const ref = await t.spawn(name, {}, { id: `${name}-1` });
      const err = await rejection(ref.result({ timeout: "20s" }), name);
      assert.ok(err instanceof ActorFailedError, `${name}: expected ActorFailedError, got ${String(err)}`);
      assert.equal(err.error.code, code, name);
      assert.equal((await t.get(ref.id))?.status, "failed", name);
    }
  });

  test("spawn and get before start (or after stop) are NOT_STARTED", async () => {
    const idle = testTroupe({ actors: [echo] });
    const spawnErr = await rejection(idle.spawn(echo, {}, { id: "never" }), "spawn before start");
    assertTroupeError(spawnErr, NotStartedError, "NOT_STARTED", "spawn before start");
    const getErr = await rejection(idle.get("never"), "get before start");
    assertTroupeError(getErr, NotStartedError, "NOT_STARTED", "get before start");
    await idle.stop();
    const afterErr = await rejection(idle.spawn(echo, {}, { id: "never" }), "spawn after stop");
    assertTroupeError(afterErr, NotStartedError, "NOT_STARTED", "spawn after stop");
  });

  test("non-serialisable input is NOT_SERIALIZABLE", async () => {
    await t.start();
    const before = await countActors(t);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const inputs: [string, unknown][] = [
      ["a function", () => 1],
      ["a symbol", Symbol("s")],
      ["a cyclic object", cyclic],
      ["a nested function", { deep: { handler: () => 1 } }],
      ["a symbol in an array", [1, Symbol("s")]],
      ["a promise", Promise.resolve(1)],
    ];
    for (const [what, input] of inputs) {
      const err = await rejection(t.spawn(echo, input, { id: "unserialisable" }), what);
      assertTroupeError(err, SerializationError, "NOT_SERIALIZABLE", what);
    }
    assert.equal(await countActors(t), before);
    assert.equal(await t.get("unserialisable"), null);
  });

  test("input over maxPayloadBytes is PAYLOAD_TOO_LARGE", async () => {
    await t.start();
    const before = await countActors(t);
    const err = await rejection(t.spawn(echo, { blob: "x".repeat(1000) }, { id: "too-big" }), "oversized");
    assertTroupeError(err, PayloadTooLargeError, "PAYLOAD_TOO_LARGE", "oversized");
    assert.equal((err as PayloadTooLargeError).limit, 256);
    assert.ok((err as PayloadTooLargeError).size > 256);
    const binErr = await rejection(t.spawn(echo, new Uint8Array(1000), { id: "too-big" }), "oversized bytes");
    assertTroupeError(binErr, PayloadTooLargeError, "PAYLOAD_TOO_LARGE", "oversized bytes");
    assert.equal(await countActors(t), before);
    assert.equal(await t.get("too-big"), null);
    // Under the limit is fine.
    const ok = await t.spawn(echo, { blob: "x".repeat(100) }, { id: "small-enough" });
    assert.deepEqual(await ok.result({ timeout: "20s" }), { blob: "x".repeat(100) });
  });

  test("bad schema and database options are VALIDATION", async () => {
    await t.start();
    const before = await countActors(t);
    const schemas: unknown[] = [
      "Bad-Schema",
      "1abc",
      "a".repeat(64),
      'x"; DROP SCHEMA public; --',
      "",
      "has space",
      42,
    ];
    for (const s of schemas) {
      const what = `schema ${JSON.stringify(s)}`;
      const err = thrown(() => new Troupe({ database: "memory://", schema: s as string }), what);
      assertTroupeError(err, ValidationError, "VALIDATION", what);
    }
    const databases: unknown[] = ["mysql://x", "sqlite://file.db", "", 42, { not: "a pool" }];
    for (const d of databases) {
      const what = `database ${JSON.stringify(d)}`;
      const err = thrown(() => new Troupe({ database: d as string }), what);
      assertTroupeError(err, ValidationError, "VALIDATION", what);
    }
    assert.equal(await countActors(t), before);
  });

  test("bad redis, actors and logger options are VALIDATION at construction", async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['redis "mysql://x"', { redis: "mysql://x" }],
      ["redis 42", { redis: 42 }],
      ["actors 42", { actors: 42 }],
      ['logger "loud"', { logger: "loud" }],
      ['preparedStatements "no"', { preparedStatements: "no" }],
      ['statementTimeout "50ms"', { statementTimeout: "50ms" }],
      ["statementTimeout 0", { statementTimeout: 0 }],
      ["statementTimeout -1", { statementTimeout: -1 }],
      ["statementTimeout true", { statementTimeout: true }],
      ['statementTimeout "soon"', { statementTimeout: "soon" }],
      ["statementTimeout 2^31", { statementTimeout: 2 ** 31 }],
    ];
    const wrong: string[] = [];
    for (const [what, o] of cases) {
      let t: Troupe | undefined;
      try {
        t = new Troupe({ database: "memory://", ...o });
        wrong.push(`${what}: accepted`);
      } catch (err) {
        if (!(err instanceof ValidationError)) wrong.push(`${what}: ${String(err)}`);
      } finally {
        await t?.stop();
      }
    }
    assert.deepEqual(wrong, [], "each bad option is refused with a ValidationError");
  });
});

describe("schema checks at start", () => {
  test("start({ migrate: false }) on an empty schema is SCHEMA_MISSING and creates nothing", async () => {
    const backend = await persistentBackend("nomig");
    try {
      const t = backend.troupe({ migrate: false });
      try {
        const err = await rejection(t.start(), "migrate: false on an empty schema");
        assertTroupeError(err, SchemaMissingError, "SCHEMA_MISSING", "migrate: false");
      } finally {
        await t.stop();
      }
      const rows = await backend.rawQuery<{ n: number }>(
        "SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = $1",
        [backend.schema],
      );
      assert.equal(rows[0]?.n, 0, "the schema was not created");
    } finally {
      await backend.cleanup();
    }
  });

  test("a schema newer than the code is SCHEMA_TOO_NEW, with or without migrate, and changes nothing", async () => {
    const backend = await persistentBackend("new");
    try {
      const first = backend.troupe({ actors: [actor("idle", async () => "idle")] });
      await first.start();
      await (await first.spawn("idle", {}, { id: "kept" })).result({ timeout: "20s" });
      await databaseOf(first).query(
        boundSql(first, "INSERT INTO {schema}.migrations (version, name) VALUES (9999, 'from_the_future')"),
      );
      const actorsBefore = await countActors(first);
      const { rows: versionsBefore } = await databaseOf(first).query<{ version: number }>(
        boundSql(first, "SELECT version FROM {schema}.migrations ORDER BY version"),
      );
      assert.equal(versionsBefore.at(-1)?.version, 9999);
      await first.stop();

      for (const migrate of [true, false]) {
        const t = backend.troupe({ migrate });
        try {
          const err = await rejection(t.start(), `migrate: ${migrate}`);
          assertTroupeError(err, SchemaTooNewError, "SCHEMA_TOO_NEW", `migrate: ${migrate}`);
          assert.equal((err as SchemaTooNewError).databaseVersion, 9999);
        } finally {
          await t.stop();
        }
      }

      const versions = await backend.rawQuery<{ version: number }>(
        `SELECT version FROM "${backend.schema}".migrations ORDER BY version`,
      );
      assert.deepEqual(versions, versionsBefore, "no migration was applied or removed");
      const actors = await backend.rawQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${backend.schema}".actors`,
      );
      assert.equal(actors[0]?.n, actorsBefore);
      // No worker of the refused Troupes registered itself.
      const workers = await backend.rawQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${backend.schema}".workers`,
      );
      assert.equal(workers[0]?.n, 0);
    } finally {
      await backend.cleanup();
    }
  });
});
