/**
 * The `troupe` CLI as a child process (`node --import tsx src/cli.ts`) against a database the
 * test prepares: a worker runs a few actors to waiting / completed / failed and is stopped
 * (embedded PGlite is single-process: the CLI cannot open a directory another troupe holds),
 * then every command reads or changes that database.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { actor, channel, NonRetryableError, type Troupe } from "../src/index.js";
import { dropSchema, eventually, freshSchema, PG_URL, testTroupe } from "./helpers.js";
import { runNode, type NodeRun } from "./support/run-node.js";
import { boundSql, databaseOf } from "./support/internals.js";

const Wake = channel<{ go: boolean }>("cli-wake");
const order = actor(
  "order",
  async (ctx, _input: { customer: { id: string }; items: { sku: string; qty: number }[] }) => {
    await ctx.subscribe(Wake, "direct");
    return await ctx.receive(Wake, { timeout: "1h" }); // stays waiting for the whole test
  },
);
const quick = actor("quick", async (ctx, input: { n: number }) => {
  return await ctx.step("double", () => input.n * 2);
});
const broken = actor("broken", async (ctx) => {
  await ctx.step("charge", () => {
    throw new NonRetryableError("card declined");
  });
});

type Run = NodeRun;

describe("troupe CLI", () => {
  const schema = freshSchema("cli");
  // Embedded PGlite in a directory of its own (the CLI opens it after the worker stopped), or
  // a schema of its own on the real server.
  let dir: string | undefined;
  let connection: string[];

  /** Runs the CLI on the test database; --json output is parsed by `json()`. */
  function cli(args: string[], conn: string[] = connection): Promise<Run> {
    return runNode(["src/cli.ts", ...args, ...conn]); // no database or Redis from the environment
  }

  async function json<T = unknown>(args: string[]): Promise<T> {
    const r = await cli([...args, "--json"]);
    assert.equal(r.code, 0, `troupe ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  async function ids(args: string[]): Promise<string[]> {
    const page = await json<{ items: { id: string }[] }>(["list", ...args]);
    return page.items.map((a) => a.id);
  }

  /** A failing run: its exit code, and a message on stderr matching `message`. */
  async function fails(args: string[], code: number, message: RegExp, conn?: string[]): Promise<void> {
    const r = await cli(args, conn);
    assert.equal(r.code, code, `troupe ${args.join(" ")}: exit ${r.code}, stderr: ${r.stderr}`);
    assert.match(r.stderr, message, `troupe ${args.join(" ")}`);
    assert.equal(r.stdout, "", `troupe ${args.join(" ")} printed nothing on stdout`);
  }

  before(async () => {
    dir = PG_URL ? undefined : await mkdtemp(join(tmpdir(), "troupe-cli-"));
    const worker: Troupe = testTroupe({ actors: [order, quick, broken], database: PG_URL ?? dir, schema });
    await worker.start();
    try {
      const orders = [
        { id: "order-1", customer: "c1", sku: "a", qty: 2, started: "2099-01-01T00:00:00Z" },
        { id: "order-2", customer: "c2", sku: "a", qty: 5, started: "2099-01-02T00:00:00Z" },
        { id: "order-3", customer: "c1", sku: "b", qty: 5, started: "2099-01-03T00:00:00Z" },
      ];
      for (const o of orders)
        await worker.spawn(
          order,
          { customer: { id: o.customer }, items: [{ sku: o.sku, qty: o.qty }] },
          { id: o.id },
        );
      await worker.spawn(quick, { n: 1 }, { id: "quick-1" });
      await worker.spawn(quick, { n: 2 }, { id: "quick-2" });
      await worker.spawn(broken, {}, { id: "broken-1" });
      const want: Record<string, string> = {
        "order-1": "waiting",
        "order-2": "waiting",
        "order-3": "waiting",
        "quick-1": "completed",
        "quick-2": "completed",
        "broken-1": "failed",
      };
      await eventually(async () => {
        for (const [id, status] of Object.entries(want))
          if ((await worker.get(id))?.status !== status) return false;
        return true;
      }, "every actor in its expected status");
      // Fixed start times for the date filters, and one completion long ago for stats --since.
      for (const o of orders)
        await databaseOf(worker).query(
          boundSql(worker, `UPDATE {schema}.actors SET started_at = $2 WHERE id = $1`),
          [o.id, new Date(o.started)],
        );
      await databaseOf(worker).query(
        boundSql(
          worker,
          `UPDATE {schema}.actors
                  SET started_at = timestamptz '2020-01-01 00:00:00+00',
                      finished_at = timestamptz '2020-01-01 00:00:01+00',
                      updated_at = timestamptz '2020-01-01 00:00:01+00'
                WHERE id = 'quick-2'`,
        ),
      );
      connection = ["--database", (PG_URL ?? dir)!, "--schema", schema];
    } finally {
      await worker.stop();
    }
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    else await dropSchema(schema);
  });

  test("list: everything, newest first, in text and JSON", async () => {
    const all = await ids([]);
    assert.deepEqual(all.slice(0, 3), ["order-3", "order-2", "order-1"]);
    assert.deepEqual(all.at(-1), "quick-2");
    assert.deepEqual([...all].sort(), ["broken-1", "order-1", "order-2", "order-3", "quick-1", "quick-2"]);
    const text = await cli(["list"]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split("\n");
    assert.equal(lines.length, 6);
    assert.deepEqual(lines[0]!.split("\t"), ["order-3", "order", "waiting", "2099-01-03T00:00:00.000Z"]);
  });

  test("list --status and --actor", async () => {
    assert.deepEqual(await ids(["--status", "waiting"]), ["order-3", "order-2", "order-1"]);
    assert.deepEqual((await ids(["--status", "completed,failed"])).sort(), [
      "broken-1",
      "quick-1",
      "quick-2",
    ]);
    assert.deepEqual((await ids(["--actor", "quick"])).sort(), ["quick-1", "quick-2"]);
    assert.deepEqual(await ids(["--actor", "quick", "--status", "failed"]), []);
  });

  test("list --input: JSON-path equality, repeatable", async () => {
    assert.deepEqual(await ids(["--input", 'customer.id="c1"']), ["order-3", "order-1"]);
    assert.deepEqual(await ids(["--input", 'customer.id="c1"', "--input", "items.0.qty=5"]), ["order-3"]);
    assert.deepEqual(await ids(['--input=items.0.sku="a"']), ["order-2", "order-1"]);
    assert.deepEqual(await ids(["--input", "n=2"]), ["quick-2"]);
    // A JSON number is not the string "2".
    assert.deepEqual(await ids(["--input", 'n="2"']), []);
  });

  test("list --started-after / --started-before", async () => {
    assert.deepEqual(
      await ids(["--started-after", "2099-01-01T12:00:00Z", "--started-before", "2099-01-03"]),
      ["order-2"],
    );
    // An offset counts: 01:00+02:00 is 23:00 UTC the day before, so order-2 (00:00 UTC) is after it.
    assert.deepEqual(await ids(["--started-after", "2099-01-02T01:00:00+02:00"]), ["order-3", "order-2"]);
    assert.deepEqual(await ids(["--started-after", "2099-01-02T01:00:00Z"]), ["order-3"]);
    assert.deepEqual(await ids(["--started-before", "2021-01-01", "--actor", "quick"]), ["quick-2"]);
    assert.deepEqual(await ids(["--started-after", "2099-01-02", "--input", 'customer.id="c1"']), [
      "order-3",
    ]);
  });

  test("list --limit and --cursor page through; a forged cursor is an error", async () => {
    const first = await json<{ items: { id: string }[]; nextCursor?: string }>(["list", "--limit", "4"]);
    assert.equal(first.items.length, 4);
    assert.ok(first.nextCursor);
    const rest = await json<{ items: { id: string }[]; nextCursor?: string }>([
      "list",
      "--limit",
      "4",
      "--cursor",
      first.nextCursor,
    ]);
    assert.equal(rest.nextCursor, undefined);
    const walked = [...first.items, ...rest.items].map((a) => a.id);
    assert.deepEqual(walked, await ids([]));
    const text = await cli(["list", "--limit", "4"]);
    assert.match(text.stdout, new RegExp(`-- more: --cursor ${first.nextCursor}`));
    await fails(
      ["list", "--cursor", Buffer.from('["yesterday","x"]').toString("base64url")],
      2,
      /\[VALIDATION\] cursor/,
    );
  });

  test("stats, with --actor and --since", async () => {
    type Stats = { byStatus: Record<string, number>; completed: number };
    const all = await json<Stats>(["stats"]);
    assert.deepEqual(
      { waiting: all.byStatus.waiting, completed: all.byStatus.completed, failed: all.byStatus.failed },
      { waiting: 3, completed: 2, failed: 1 },
    );
    assert.equal(all.completed, 2);
    const q = await json<Stats>(["stats", "--actor", "quick"]);
    assert.equal(q.byStatus.completed, 2);
    assert.equal(q.byStatus.waiting, 0);
    // quick-2 finished in 2020: a window of the last day (a duration) or from 2021 (a date) leaves it out.
    for (const since of ["1d", "2021-01-01", "2021-01-01T00:00:00+05:00"]) {
      const s = await json<Stats>(["stats", "--actor", "quick", "--since", since]);
      assert.equal(s.completed, 1, `--since ${since}`);
      assert.equal(s.byStatus.completed, 1, `--since ${since}`);
    }
    assert.equal((await json<Stats>(["stats", "--actor", "quick", "--since", "2019-06-01"])).completed, 2);
    const future = await json<Stats>(["stats", "--since", "2199-01-01"]);
    assert.deepEqual(Object.values(future.byStatus), [0, 0, 0, 0, 0, 0]);
    const text = await cli(["stats", "--actor", "order"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^waiting\t3$/m);
  });

  test("show: the actor and its history", async () => {
    const shown = await json<{
      status: string;
      output: unknown;
      history: { kind: string; name: string; result?: unknown }[];
    }>(["show", "quick-1"]);
    assert.equal(shown.status, "completed");
    assert.equal(shown.output, 2);
    const double = shown.history.find((e) => e.name === "double");
    assert.ok(double, JSON.stringify(shown.history));
    assert.equal(double.result, 2);
    const text = await cli(["show", "broken-1"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^broken-1 \(broken\) failed$/m);
    assert.match(text.stdout, /charge\terror: card declined/);
    await fails(["show", "nobody"], 2, /\[NOT_FOUND\]/);
  });

  test("cancel: a waiting actor is cancelled; a finished or unknown one is an error", async () => {
    const r = await cli(["cancel", "order-2", "changed", "my", "mind"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cancel requested for order-2/);
    const shown = await json<{ status: string; error?: { message: string } }>(["show", "order-2"]);
    assert.equal(shown.status, "cancelled");
    assert.match(JSON.stringify(shown), /changed my mind/);
    assert.deepEqual(await ids(["--status", "cancelled"]), ["order-2"]);
    assert.deepEqual(await ids(["--status", "waiting"]), ["order-3", "order-1"]);
    await fails(["cancel", "quick-1"], 2, /\[NOT_CANCELLABLE\]/);
    await fails(["cancel", "nobody"], 2, /\[NOT_FOUND\]/);
  });

  test("bad input: usage errors exit 1, bad values exit 2, both with a message", async () => {
    // Rejected while parsing the command line: no database is opened (the directory named
    // here is never created), so these can run side by side.
    const nowhere = ["--database", join(tmpdir(), `troupe-cli-never-${process.pid}-${Date.now()}`)];
    const early: [string[], number, RegExp][] = [
      [["list", "--frob"], 1, /Unknown option '--frob'/],
      [["list", "--status"], 1, /--status/],
      [["stats", "--status", "failed"], 1, /--status is not an option of "stats"/],
      [["list", "--since", "1h"], 1, /--since is not an option of "list"/],
      [["frobnicate"], 1, /unknown command "frobnicate"/],
      [
        ["list", "--started-after", "yesterday"],
        2,
        /\[VALIDATION\] --started-after: "yesterday" is not an ISO 8601 date/,
      ],
      [["list", "--started-before", "2099-02-30"], 2, /--started-before: "2099-02-30" is not a valid date/],
      [["list", "--started-after", "2099-01-01T25:00Z"], 2, /--started-after/],
      [["list", "--started-after", "1"], 2, /--started-after/],
      [["list", "--input", "customer.id=c1"], 2, /--input customer.id=c1: the value must be JSON/],
      [["list", "--input", "=1"], 2, /--input: "=1" is not PATH=JSON/],
      [["list", "--input", "a=1", "--input", "a=2"], 2, /path "a" is given twice/],
      [["list", "--limit", "1.5"], 2, /--limit: "1.5" is not a whole number/],
      [
        ["stats", "--since", "soon"],
        2,
        /\[VALIDATION\] --since: "soon" is neither an ISO 8601 date .* nor a duration/,
      ],
      [["stats", "--since=-5m"], 2, /--since: "-5m" is neither/],
    ];
    await Promise.all(early.map(([args, code, message]) => fails(args, code, message, nowhere)));
    assert.equal(existsSync(nowhere[1]!), false, "no PGlite directory was created");
    // Rejected by troupe.list() itself, on the test database.
    const late: [string[], RegExp][] = [
      [["list", "--input", "a..b=1"], /\[VALIDATION\] input filter path "a..b"/],
      [["list", "--status", "exploded"], /\[VALIDATION\] status must be one of/],
      [["list", "--limit", "0"], /\[VALIDATION\] limit must be an integer from 1 to 1000/],
    ];
    for (const [args, message] of late) await fails(args, 2, message);
  });
});
