/**
 * The package's public surface: every error code has an exported class that `instanceof`
 * recognises live, after a replay and through the HTTP map; every code has an HTTP status;
 * every name docs/api.md documents is exported from the entry (src/index.ts).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import * as entry from "../src/index.js";
import type * as T from "../src/index.js";
import { ERROR_REGISTRY, errorSpec, type ErrorCode, type TroupeError } from "../src/api/errors.js";
import { errorFromRecord, recordError } from "../src/api/recorded-errors.js";
import { STATUS_BY_CODE, errorBody, httpStatus } from "../src/serve/http-errors.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const api = entry as unknown as Record<string, unknown>;
const CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[];
const RECORD = { name: "Error", message: "m", stack: "recorded stack" };

/** One live instance per class, made through the entry's exports (so they are the public classes). */
const SAMPLES: Record<string, (code: ErrorCode) => TroupeError> = {
  ValidationError: () => new entry.ValidationError("m"),
  SerializationError: () => new entry.SerializationError("m"),
  PayloadTooLargeError: () => new entry.PayloadTooLargeError(2, 1),
  MessageValidationError: () => new entry.MessageValidationError("ch", new Error("bad")),
  ChannelModeConflictError: () => new entry.ChannelModeConflictError("ch", "broadcast", "direct"),
  NotSubscribedError: () => new entry.NotSubscribedError("ch"),
  UnknownActorError: () => new entry.UnknownActorError("a"),
  NotFoundError: () => new entry.NotFoundError("m"),
  DuplicateActorError: () => new entry.DuplicateActorError("k", "a-1"),
  ActorIdConflictError: () => new entry.ActorIdConflictError("a-1", "other"),
  NotCancellableError: () => new entry.NotCancellableError("a-1", "completed"),
  ActorFailedError: () => new entry.ActorFailedError("a-1", { name: "Error", message: "m" }),
  ActorCancelledError: () => new entry.ActorCancelledError("a-1", "why"),
  TimeoutError: () => new entry.TimeoutError("m"),
  StepTimeoutError: () => new entry.StepTimeoutError("s", 5),
  NonRetryableError: () => new entry.NonRetryableError("m"),
  StepFailedError: () => new entry.StepFailedError("s", 3, { name: "Error", message: "m" }),
  NonDeterminismError: () => new entry.NonDeterminismError(1, "step a", "step b"),
  LockLostError: () => new entry.LockLostError("a-1"),
  SchemaTooNewError: () => new entry.SchemaTooNewError(9, 8),
  SchemaMissingError: () => new entry.SchemaMissingError("m"),
  DatabaseLockedError: () => new entry.DatabaseLockedError("/d", "/d/lock", null, true),
  DatabaseUnavailableError: () => new entry.DatabaseUnavailableError("m"),
  NotStartedError: () => new entry.NotStartedError("spawn"),
  SinkError: () => new entry.SinkError("m"),
  IngestError: (code) => new entry.IngestError(code, "m"),
};

/** The map `troupe serve` and the dashboard answered with before the registry (issue 11): kept. */
const HTTP_BEFORE_REGISTRY: Record<string, number> = {
  VALIDATION: 400,
  INVALID_MESSAGE: 400,
  NOT_SERIALIZABLE: 400,
  CHANNEL_MODE_CONFLICT: 409,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  NOT_STARTED: 503,
  SCHEMA_MISSING: 503,
  DATABASE_UNAVAILABLE: 503,
};
/** And the statuses POST /events rejected a CloudEvent with (IngestError): 400 unless listed. */
const INGEST_415 = ["BATCH_NOT_SUPPORTED", "UNSUPPORTED_MEDIA_TYPE"];

function assertSameError(err: unknown, code: ErrorCode, what: string): void {
  const spec = ERROR_REGISTRY[code];
  assert.ok(err instanceof entry.TroupeError, `${what}: not a TroupeError`);
  assert.ok(err instanceof spec.class, `${what}: not a ${spec.class.name}`);
  assert.equal(err.code, code, `${what}: code`);
  assert.equal(err.retryable, "retryable" in spec, `${what}: retryable`);
}

describe("error registry", () => {
  test("every code's class is exported from the entry under its own name", () => {
    for (const code of CODES) {
      const cls = ERROR_REGISTRY[code].class;
      assert.equal(api[cls.name], cls, `${code}: ${cls.name} is not exported`);
    }
    // ...and every exported error class has a code in the registry.
    const classes = new Set<unknown>(CODES.map((c) => ERROR_REGISTRY[c].class));
    for (const [name, value] of Object.entries(api)) {
      if (typeof value === "function" && value.prototype instanceof entry.TroupeError)
        assert.ok(classes.has(value), `${name} is exported but has no code in the registry`);
    }
  });

  test("a live error of each class carries its registry code, name and retryable", () => {
    for (const code of CODES) {
      const cls = ERROR_REGISTRY[code].class;
      const make = SAMPLES[cls.name];
      assert.ok(make, `${code}: no sample for ${cls.name} in this test`);
      const err = make(code);
      assertSameError(err, code, `live ${code}`);
      assert.equal(err.name, cls.name, `live ${code}: name`);
    }
    assert.equal(new entry.DatabaseUnavailableError("m").retryable, true);
    assert.equal(new entry.TroupeError("SOMETHING_ELSE", "m").retryable, false);
  });

  test("replay (errorFromRecord) rebuilds each code as its class", () => {
    for (const code of CODES) {
      const live = SAMPLES[ERROR_REGISTRY[code].class.name]!(code);
      const back = errorFromRecord(recordError(live));
      assertSameError(back, code, `replayed ${code}`);
      assert.equal(back.name, live.name, `replayed ${code}: name`);
      assert.equal(back.message, live.message, `replayed ${code}: message`);
      assert.equal(back.stack, live.stack, `replayed ${code}: stack`);
    }
    // The HTTP status of a replayed IngestError comes from the registry too.
    const ingest = errorFromRecord({ ...RECORD, code: "BATCH_NOT_SUPPORTED" });
    assert.ok(ingest instanceof entry.IngestError);
    assert.equal(ingest.status, 415);
  });

  test("replay of other codes: a plain TroupeError, and an Error without a code", () => {
    // Codes from the database are data: Object.prototype's keys must not pick a class.
    for (const code of ["MY_OWN_CODE", "__proto__", "constructor", "toString", "hasOwnProperty"]) {
      const err = errorFromRecord({ ...RECORD, code });
      assert.equal(Object.getPrototypeOf(err), entry.TroupeError.prototype, code);
      assert.equal((err as TroupeError).code, code);
      assert.equal((err as TroupeError).retryable, false, code);
      assert.equal(errorSpec(code), undefined, code);
    }
    const plain = errorFromRecord(RECORD);
    assert.equal(Object.getPrototypeOf(plain), Error.prototype);
  });

  test("replay needs no import side effect: the errors module alone rebuilds every class", () => {
    // A fresh process that imports only the errors modules (not channels.ts, ref.ts … which
    // used to register their classes when imported).
    const script = `
      const { ERROR_REGISTRY } = await import("./src/api/errors.ts");
      const { errorFromRecord } = await import("./src/api/recorded-errors.ts");
      const bad = Object.entries(ERROR_REGISTRY)
        .filter(([code, spec]) => !(errorFromRecord({ name: "E", message: "m", code }) instanceof spec.class))
        .map(([code]) => code);
      process.stdout.write(JSON.stringify(bad));`;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      cwd: ROOT,
    });
    assert.deepEqual(JSON.parse(out), []);
  });

  test("every code has an HTTP status, and the servers' map is the one they had", () => {
    for (const code of CODES) {
      const status = httpStatus(code);
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: status ${status}`);
      assert.equal(status, ERROR_REGISTRY[code].http, code);
      // 500 is "not the caller's to see": the servers answer INTERNAL, so it is not in their map.
      assert.equal(STATUS_BY_CODE[code], status === 500 ? undefined : status, `${code}: STATUS_BY_CODE`);
    }
    for (const code of CODES) {
      const want =
        ERROR_REGISTRY[code].class === entry.IngestError
          ? INGEST_415.includes(code)
            ? 415
            : 400
          : (HTTP_BEFORE_REGISTRY[code] ?? 500);
      assert.equal(httpStatus(code), want, `${code}: HTTP status changed`);
    }
    assert.equal(httpStatus("NOT_A_TROUPE_CODE"), 500);
    assert.equal(STATUS_BY_CODE["NOT_A_TROUPE_CODE"], undefined);
  });

  test("an error answered through the HTTP map comes back as its class", () => {
    for (const code of CODES) {
      const live = SAMPLES[ERROR_REGISTRY[code].class.name]!(code);
      const status = STATUS_BY_CODE[live.code];
      if (status === undefined) continue; // answered as INTERNAL: the code does not travel
      const body = JSON.parse(JSON.stringify(errorBody(live.code, live.message))) as {
        error: { code: string; message: string };
      };
      const back = errorFromRecord({ name: live.name, ...body.error });
      assertSameError(back, code, `${code} over HTTP`);
      assert.equal(back.message, live.message);
    }
  });

  test("src/ raises troupe's codes through their classes, never `new TroupeError(CODE`", () => {
    const files = (function walk(dir: string): string[] {
      return readdirSync(dir).flatMap((n) => {
        const p = join(dir, n);
        return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
      });
    })(join(ROOT, "src"));
    const bare: string[] = [];
    for (const file of files) {
      for (const m of readFileSync(file, "utf8").matchAll(/new TroupeError\(\s*["'`]([A-Z_]+)["'`]/g)) {
        if (errorSpec(m[1]!))
          bare.push(
            `${relative(ROOT, file)}: new TroupeError("${m[1]}" (use ${errorSpec(m[1]!)!.class.name})`,
          );
      }
    }
    assert.deepEqual(bare, []);
  });
});

/**
 * Each type docs/api.md names, once as a type (tsc fails if the entry does not export it)
 * and once as a key (checked against the doc below): a name added to the doc must be added here.
 */
interface DocumentedTypes {
  ActorContext: T.ActorContext;
  ActorInfo: T.ActorInfo;
  ActorStatus: T.ActorStatus;
  CompensationRecord: T.CompensationRecord;
  ContextCodec: T.ContextCodec;
  HistoryEntry: T.HistoryEntry;
  Message: T.Message;
  OutboxSink: T.OutboxSink;
  ScheduleInfo: T.ScheduleInfo;
  StreamEvent: T.StreamEvent;
  TroupeStats: T.TroupeStats;
  ChannelSummary: T.ChannelSummary;
  ChannelsOptions: T.ChannelsOptions;
  WorkerSummary: T.WorkerSummary;
  OutboxEntry: T.OutboxEntry;
  ReadStreamOptions: T.ReadStreamOptions;
  StreamPage: T.StreamPage;
  ProjectionOptions: T.ProjectionOptions;
  CatchUpOptions: T.CatchUpOptions;
  ProjectionProgress: T.ProjectionProgress;
  // Not named in docs/api.md but public since issue 11: the types of documented arguments.
  ListFilter: T.ListFilter;
  ScheduleOptions: T.ScheduleOptions;
  ErrorCode: T.ErrorCode;
  RecordedError: T.RecordedError;
  DatabaseLockHolder: T.DatabaseLockHolder;
  ChannelMode: T.ChannelMode;
  Duration: T.Duration;
}
const DOCUMENTED_TYPES: Record<keyof DocumentedTypes, true> = {
  ActorContext: true,
  ActorInfo: true,
  ActorStatus: true,
  CompensationRecord: true,
  ContextCodec: true,
  HistoryEntry: true,
  Message: true,
  OutboxSink: true,
  ScheduleInfo: true,
  StreamEvent: true,
  TroupeStats: true,
  ChannelSummary: true,
  ChannelsOptions: true,
  WorkerSummary: true,
  OutboxEntry: true,
  ReadStreamOptions: true,
  StreamPage: true,
  ProjectionOptions: true,
  CatchUpOptions: true,
  ProjectionProgress: true,
  ListFilter: true,
  ScheduleOptions: true,
  ErrorCode: true,
  RecordedError: true,
  DatabaseLockHolder: true,
  ChannelMode: true,
  Duration: true,
};

/** Documented functions and classes (values): docs/api.md and the spec's contract. */
const DOCUMENTED_VALUES = [
  "Troupe",
  "ActorRef",
  "actor",
  "channel",
  "asyncLocalContext",
  "httpSink",
  "createServer",
  "TroupeServer",
  "OutboxRelay",
  "startDashboard",
];

/**
 * Troupe's methods that replaced free functions or the `outbox` getter (issue 11): the free
 * functions took internal stores users could not build, so they are methods and not exports.
 */
const TROUPE_METHODS = [
  "readStream",
  "catchUp",
  "runProjection",
  "projectionPosition",
  "resetProjection",
  "outboxCounts",
  "outboxDeadLetters",
  "outboxEvent",
  "redriveOutbox",
  "createOutboxRelay",
  "ping",
  "channels",
  "workers",
];

/** PascalCase names in docs/api.md's code that are not troupe's: built-ins and the examples' own values. */
const NOT_TROUPE = new Set(["AsyncIterable", "AsyncLocalStorage", "Date", "Error", "Promise", "Record"]);
const EXAMPLE_VALUES = new Set(["Chat", "Orders", "Typing", "OrderSchema"]);

describe("documented names", () => {
  const doc = readFileSync(join(ROOT, "docs/api.md"), "utf8");

  test("the error table of docs/api.md matches the registry and the exports", () => {
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` +\| `(\w+)` +\|/gm)].map((m) => [m[1]!, m[2]!] as const);
    assert.ok(rows.length >= 20, `parsed only ${rows.length} rows of the error table`);
    for (const [code, cls] of rows) {
      assert.equal(typeof api[cls], "function", `${cls} (documented for ${code}) is not exported`);
      assert.equal(errorSpec(code)?.class, api[cls], `${code}: the registry's class is not ${cls}`);
    }
  });

  test("every name in docs/api.md's code is exported (or is not troupe's)", () => {
    const code = [...doc.matchAll(/```[\s\S]*?```|`[^`\n]+`/g)].map((m) => m[0]).join("\n");
    const names = new Set(
      [...code.matchAll(/(?<![\w."'/-])([A-Z][a-z0-9][A-Za-z0-9]*)\b/g)].map((m) => m[1]!),
    );
    const missing = [...names].filter(
      (n) => !(n in api) && !(n in DOCUMENTED_TYPES) && !NOT_TROUPE.has(n) && !EXAMPLE_VALUES.has(n),
    );
    assert.deepEqual(missing, [], "documented but not exported (or not listed in this test)");
    // The names docs import from "troupe" exist too.
    for (const file of ["docs/api.md", "README.md"]) {
      const text = readFileSync(join(ROOT, file), "utf8");
      for (const m of text.matchAll(/import \{([^}]*)\} from "troupe"/g)) {
        for (const raw of m[1]!.split(",")) {
          const name = raw.replace(/^\s*type\s+/, "").trim();
          if (name)
            assert.ok(name in api || name in DOCUMENTED_TYPES, `${file} imports ${name} from "troupe"`);
        }
      }
    }
  });

  test("documented functions and classes are exported", () => {
    for (const name of DOCUMENTED_VALUES) assert.equal(typeof api[name], "function", name);
    const proto = entry.Troupe.prototype as unknown as Record<string, unknown>;
    for (const name of TROUPE_METHODS) {
      assert.equal(typeof proto[name], "function", `Troupe.${name}`);
      assert.ok(!(name in api), `${name} is a Troupe method, not an export of the entry`);
    }
    assert.ok(!("_storage" in proto), "Troupe has no _storage getter (tests use test/support/internals.ts)");
    assert.ok(!("outbox" in proto), "Troupe has no outbox getter (its outbox methods instead)");
    assert.ok(Object.keys(DOCUMENTED_TYPES).length > 0);
  });
});
