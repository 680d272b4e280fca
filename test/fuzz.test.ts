/**
 * Fuzzing of every public entry point with fast-check (issue 10, deliver 3): Troupe methods,
 * ctx methods inside an actor, tx methods inside ctx.transaction, HTTP ingress bodies,
 * dashboard query strings and CLI arguments. Property: success or a TroupeError, never an
 * untyped error or an unhandled rejection, never a write on failure.
 *
 * CI (npm test): a fixed seed and bounded runs. `npm run fuzz` runs longer: FUZZ_RUNS (Troupe
 * calls; the other groups scale from it) and FUZZ_SEED (default: random, printed).
 */
import assert from "node:assert/strict";
import { spawn as spawnProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import type { Troupe } from "../src/index.js";
import { startDashboard, type Dashboard } from "../src/dashboard/index.js";
import { createServer, type TroupeServer } from "../src/serve/server.js";
import { hostileString, noopActor, weirdValue } from "./fixtures/fuzz-arbitraries.js";
import {
  Tallies,
  checkTroupeCall,
  ctxCalls,
  fuzzActor,
  runCtxCase,
  troupeCalls,
  txCalls,
} from "./fixtures/fuzz-harness.js";
import { dropSchema, freshSchema, PG_URL, testTroupe } from "./helpers.js";
import { sqlRows } from "./support/internals.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const SEED = process.env.FUZZ_SEED === undefined ? 20261204 : Number(process.env.FUZZ_SEED);
const RUNS = process.env.FUZZ_RUNS === undefined ? 1500 : Number(process.env.FUZZ_RUNS);
const scaled = (share: number, min: number) => Math.max(min, Math.round(RUNS * share));
const params = (numRuns: number) => ({ seed: SEED, numRuns, endOnFailure: true });

const tallies = new Tallies();
let unhandled = 0;
const onUnhandled = (reason: unknown) => {
  unhandled++;
  tallies.failures.push(`unhandled rejection: ${String(reason)}`);
};

describe(`fuzzing public entry points (seed ${SEED}, FUZZ_RUNS ${RUNS})`, () => {
  const clientSchema = freshSchema("fzc");
  const workerSchema = freshSchema("fzw");
  let client: Troupe;
  let worker: Troupe;
  const fz = fuzzActor(() => worker);

  before(async () => {
    process.on("unhandledRejection", onUnhandled);
    // A client (no worker: nothing changes rows behind the snapshot) and a worker for ctx/tx.
    client = testTroupe({
      schema: clientSchema,
      worker: false,
      actors: [noopActor],
      maxPayloadBytes: 64 * 1024,
    });
    worker = testTroupe({ schema: workerSchema, actors: [fz.def], maxPayloadBytes: 64 * 1024 });
    await client.start();
    await worker.start();
  });
  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    await client.stop();
    await worker.stop();
    await dropSchema(clientSchema);
    await dropSchema(workerSchema);
    console.log(
      `\nfuzz seed ${SEED}, FUZZ_RUNS ${RUNS}\n${tallies.table()}\nunhandled rejections: ${unhandled}`,
    );
    if (tallies.failures.length) console.log(`failures:\n${tallies.failures.slice(0, 50).join("\n")}`);
  });

  test("Troupe methods: success or a TroupeError, nothing written on failure", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(...troupeCalls), async (c) => {
        const failure = await checkTroupeCall(client, c, tallies);
        assert.equal(failure, null, failure ?? "");
      }),
      params(RUNS),
    );
  });

  test("ctx methods inside an actor: success or a TroupeError, nothing written on failure", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(...ctxCalls), async (c) => {
        const failure = await runCtxCase(worker, fz, { ctx: c }, tallies);
        assert.equal(failure, null, failure ?? "");
      }),
      params(scaled(0.2, 40)),
    );
  });

  test("tx methods inside ctx.transaction: a caught TroupeError leaves the transaction usable, nothing written", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(...txCalls), async (c) => {
        const failure = await runCtxCase(worker, fz, { tx: c }, tallies);
        assert.equal(failure, null, failure ?? "");
      }),
      params(scaled(0.1, 30)),
    );
  });

  test("HTTP ingress: any body and CloudEvent headers get a typed answer (never 500), nothing written on a 4xx", async () => {
    const server: TroupeServer = createServer({
      troupe: client,
      port: 0,
      host: "127.0.0.1",
      maxBodyBytes: 16 * 1024,
    });
    const { url } = await server.start();
    try {
      // Node answers 431 itself for headers over 16 KiB, before troupe sees the request.
      const headerValue = hostileString.filter((s) => /^[\t\x20-\x7e]*$/.test(s) && s.length < 4096);
      const bodyArb = fc.oneof(
        weirdValue.map((v) => {
          try {
            return JSON.stringify(v) ?? "";
          } catch {
            return "{}";
          }
        }),
        fc
          .record(
            {
              specversion: fc.constantFrom("1.0", "0.3", 1),
              id: fc.oneof(hostileString, fc.integer()),
              source: hostileString,
              type: hostileString,
              data: weirdValue,
              troupeactor: hostileString,
              datacontenttype: fc.constantFrom("application/json", "text/plain", "x/y"),
            },
            { requiredKeys: [] },
          )
          .map((e) => {
            try {
              return JSON.stringify(e) ?? "";
            } catch {
              return "{}";
            }
          }),
        hostileString,
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      );
      const requestArb = fc.record({
        contentType: fc.constantFrom(
          "application/json",
          "application/cloudevents+json",
          "application/cloudevents-batch+json",
          "text/plain",
          "application/octet-stream",
          "",
        ),
        ce: fc.oneof(
          // A valid binary-mode event, then hostile overrides: reaches the publish/send paths.
          fc
            .record({
              id: fc.stringMatching(/^[a-z0-9-]{1,12}$/),
              over: fc.dictionary(
                fc.constantFrom("ce-id", "ce-type", "ce-troupeactor", "ce-x1"),
                fc.oneof(
                  fc.constantFrom("fz-ok", "a:b", "a/b", "zz-nobody"),
                  hostileString.filter((s) => /^[\t\x20-\x7e]*$/.test(s) && s.length < 4096),
                ),
                { maxKeys: 2 },
              ),
            })
            .map(({ id, over }) => ({
              "ce-specversion": "1.0",
              "ce-id": id,
              "ce-source": "https://fz.example",
              "ce-type": "fz-ok",
              ...over,
            })),
          fc.dictionary(
            fc.constantFrom(
              "ce-specversion",
              "ce-id",
              "ce-source",
              "ce-type",
              "ce-troupeactor",
              "ce-subject",
              "ce-time",
              "ce-x1",
            ),
            headerValue,
            { maxKeys: 6 },
          ),
        ),
        body: bodyArb,
        path: fc.constantFrom("/events", "/events?x=1", "/healthz"),
        method: fc.constantFrom("POST", "POST", "POST", "GET", "PUT"),
      });
      const count = async () =>
        (await sqlRows<{ n: number }>(client, "SELECT count(*)::int AS n FROM {schema}.messages"))[0]!.n;
      await fc.assert(
        fc.asyncProperty(requestArb, async (r) => {
          const beforeN = await count();
          const headers: Record<string, string> = { ...r.ce };
          if (r.contentType) headers["content-type"] = r.contentType;
          const res = await rawRequest(`${url}${r.path}`, r.method, headers, r.body);
          const entry = `http ${r.method} ${r.path.split("?")[0]}`;
          let code: unknown;
          try {
            code = (JSON.parse(res.body) as { error?: { code?: unknown } }).error?.code;
          } catch {
            code = undefined;
          }
          const failed = res.status >= 400;
          const partial = failed && (await count()) !== beforeN;
          const untyped = res.status >= 500 && res.status !== 503 ? true : failed && typeof code !== "string";
          tallies.add(
            entry,
            untyped ? "untyped" : failed ? "typed" : "ok",
            partial,
            `${res.status} ${res.body.slice(0, 200)}`,
          );
          assert.ok(!untyped && !partial, `${entry}: ${res.status} ${res.body.slice(0, 300)}`);
        }),
        params(scaled(0.3, 60)),
      );
    } finally {
      await server.stop();
    }
  });

  test("dashboard query strings and path segments: never a 500", async () => {
    const dash: Dashboard = await startDashboard(client, { port: 0, host: "127.0.0.1" });
    try {
      const rawPiece = fc.oneof(
        hostileString.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "x"))),
        fc.constantFrom(
          "%00",
          "%ED%A0%80",
          "%FF",
          "%",
          "%zz",
          "..",
          "%2F",
          "a%3Ab",
          "-1",
          "1e9",
          "0",
          "running,x",
        ),
      );
      const route = fc.oneof(
        fc.constantFrom(
          "/api/actors",
          "/api/stats",
          "/api/channels",
          "/api/groups",
          "/api/workers",
          "/api/nothing",
        ),
        rawPiece.map((s) => `/api/actors/${s}`),
        rawPiece.map((s) => `/api/groups/${s}`),
      );
      const query = fc.array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom("limit", "status", "actor", "idContains", "cursor", "token", "x"),
            rawPiece,
          ),
          rawPiece,
        ),
        { maxLength: 3 },
      );
      await fc.assert(
        fc.asyncProperty(route, query, async (path, q) => {
          const qs = q.map(([k, v]) => `${k}=${v}`).join("&");
          const res = await rawRequest(
            `${dash.url.replace(/\/$/, "")}${path}${qs ? `?${qs}` : ""}`,
            "GET",
            {},
            "",
          );
          const entry = `dashboard ${path.split("/").slice(0, 3).join("/")}`;
          const untyped = res.status >= 500 && res.status !== 503;
          tallies.add(
            entry,
            untyped ? "untyped" : res.status >= 400 ? "typed" : "ok",
            false,
            `${res.status} ${path}?${qs}: ${res.body.slice(0, 200)}`,
          );
          assert.ok(!untyped, `${path}?${qs}: ${res.status} ${res.body.slice(0, 300)}`);
        }),
        params(scaled(0.3, 60)),
      );
    } finally {
      await dash.close();
    }
  });

  test(
    "CLI arguments: exit 0, 1 (usage) or 2 with a typed [CODE], never a crash",
    { skip: process.env.FUZZ_SKIP_CLI === "1" },
    async () => {
      const dir = PG_URL ? undefined : await mkdtemp(join(tmpdir(), "troupe-fuzz-cli-"));
      const schema = freshSchema("fzcli");
      const conn = PG_URL ? ["--database", PG_URL, "--schema", schema] : ["--database", dir!];
      try {
        const argv = fc.oneof(
          fc
            .tuple(
              fc.constantFrom("list"),
              fc.array(
                fc.tuple(
                  fc.constantFrom(
                    "--status",
                    "--actor",
                    "--id-contains",
                    "--input",
                    "--started-after",
                    "--started-before",
                    "--limit",
                    "--cursor",
                  ),
                  hostileString,
                ),
                { maxLength: 3 },
              ),
            )
            .map(([c, flags]) => [c, ...flags.flat()]),
          fc
            .tuple(
              fc.constantFrom("show", "cancel", "members"),
              hostileString,
              fc.option(hostileString, { nil: undefined }),
            )
            .map(([c, a, b]) => (b === undefined ? [c, a] : [c, a, b])),
          fc.tuple(fc.constantFrom("send"), hostileString, hostileString, hostileString).map((a) => [...a]),
          fc.tuple(fc.constantFrom("publish"), hostileString, hostileString).map((a) => [...a]),
          fc
            .tuple(fc.constantFrom("stats"), fc.constantFrom("--since", "--actor"), hostileString)
            .map((a) => [...a]),
          fc.array(hostileString, { minLength: 1, maxLength: 3 }),
        );
        // argv cannot carry NUL, and the OS turns lone surrogates into U+FFFD.
        const clean = argv.map((a) => a.map((s) => s.replaceAll("\u0000", "0")));
        await fc.assert(
          fc.asyncProperty(clean, async (args) => {
            const r = await runCli([...args, ...conn]);
            const m = /\[([A-Za-z0-9_]+)\]/.exec(r.stderr);
            const typedExit2 =
              r.code === 2 && m !== null && /^[A-Z][A-Z_]+$/.test(m[1]!) && !m[1]!.startsWith("ERR_");
            const ok = (r.code === 0 || r.code === 1 || typedExit2) && !/\n\s+at /.test(r.stderr);
            tallies.add(
              `cli ${args[0] ?? ""}`.slice(0, 20),
              ok ? (r.code === 0 ? "ok" : "typed") : "untyped",
              false,
              `exit ${r.code}: ${r.stderr.slice(0, 300)}`,
            );
            assert.ok(ok, `troupe ${JSON.stringify(args)} → exit ${r.code}: ${r.stderr.slice(0, 500)}`);
          }),
          params(Math.max(4, Math.round(RUNS / 500))), // each run is a process (~3 s)
        );
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
        await dropSchema(schema);
      }
    },
  );

  test("no unhandled rejections, no untyped errors, no partial writes", () => {
    const total = tallies.totals();
    assert.equal(unhandled, 0, "unhandled rejections");
    assert.equal(total.untyped, 0, tallies.failures.join("\n"));
    assert.equal(total.partial, 0, tallies.failures.join("\n"));
  });
});

function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(method === "GET" ? undefined : body);
  });
}

function runCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const env = { ...process.env };
  delete env.TROUPE_DATABASE_URL;
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  return new Promise((resolve, reject) => {
    const child = spawnProcess(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
      cwd: REPO,
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}
