import { optionsArg } from "../arguments.js";
import { unstorableText } from "../names.js";
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { toMillis, type Duration } from "../duration.js";
import { NotFoundError, NotStartedError, TroupeError, ValidationError } from "../api/errors.js";
import type { Logger } from "../options.js";
import type { ListFilter } from "../storage/list-query.js";
import { ACTIVE_STATUSES, FINISHED_STATUSES, type ActorStatus } from "../storage/rows.js";
import type { HistoryEntry } from "../api/types.js";
import type { Troupe } from "../troupe.js";
import { toJson } from "./json.js";
import { dashboardPage, type DashboardPage } from "./page.js";
import { STATUS_BY_CODE, errorBody } from "../serve/http-errors.js";
import { startInterval } from "../timers.js";

export interface DashboardOptions {
  /** Default 4780; 0 picks a free port (read it from the returned `url`). */
  port?: number;
  /** Default "127.0.0.1"; "0.0.0.0" accepts connections from other hosts (give a token then). */
  host?: string;
  /** When set, every request needs `Authorization: Bearer <token>` or `?token=<token>`. */
  token?: string;
  /** How often the live endpoint (`/api/events`) tells pages to refresh (default "2s", at least 100 ms). */
  refreshInterval?: Duration;
  /** Errors answered with 500 are logged here. */
  logger?: Logger;
}

export interface Dashboard {
  /** `http://host:port/` as bound (with the real port when 0 was asked for). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops listening, ends live streams and open connections. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_DASHBOARD_PORT = 4780;

type Query = URLSearchParams;
interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const STATUSES: readonly ActorStatus[] = [...ACTIVE_STATUSES, ...FINISHED_STATUSES];

/** Query parameters each route accepts (besides `token`); anything else is a VALIDATION error. */
const PARAMS: Record<string, readonly string[]> = {
  page: [],
  events: [],
  stats: ["actor"],
  actors: ["status", "actor", "idContains", "limit", "cursor"],
  actor: ["limit"],
  channels: ["limit", "cursor"],
  groups: [],
  group: [],
  workers: [],
};

const LOOPBACK_BIND = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i;
const LOOPBACK_HOST_HEADER = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)(?::\d{1,5})?$/i;

function checkParams(q: Query, route: string): void {
  const allowed = PARAMS[route] ?? [];
  const seen = new Set<string>();
  for (const key of q.keys()) {
    if (key === "token") continue;
    if (!allowed.includes(key))
      throw new ValidationError(
        `unknown query parameter "${key}"${allowed.length ? ` (accepted: ${allowed.join(", ")})` : " (this endpoint takes none)"}`,
      );
    if (seen.has(key)) throw new ValidationError(`query parameter "${key}" is given more than once`);
    seen.add(key);
  }
}

function intParam(q: Query, key: string, def: number, min: number, max: number): number {
  const v = q.get(key);
  if (v === null) return def;
  if (!/^\d{1,6}$/.test(v)) throw new ValidationError(`${key} must be a whole number, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new ValidationError(`${key} must be from ${min} to ${max}, got ${n}`);
  return n;
}

function textParam(q: Query, key: string): string | undefined {
  const v = q.get(key);
  if (v === null) return undefined;
  if (v.length === 0) throw new ValidationError(`${key} must not be empty`);
  // Every parameter ends up as a query parameter: what Postgres text cannot hold is refused here.
  const problem = unstorableText(v);
  if (problem) throw new ValidationError(`${key} contains ${problem}`);
  return v;
}

/** `/prefix/<one encoded segment>` → the decoded segment, or undefined when the path is not one. */
function segmentAfter(path: string, prefix: string): string | undefined {
  if (!path.startsWith(prefix)) return undefined;
  const raw = path.slice(prefix.length);
  if (raw.length === 0 || raw.includes("/")) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ValidationError(`"${raw}" is not a valid percent-encoded path segment`);
  }
}

/**
 * The web dashboard's HTTP server (node:http). Read-only: every route is a GET.
 *  - `/` — the page (static: it holds no data; it fetches the JSON below and follows /api/events);
 *  - `/api/stats` (`?actor=`) — `troupe.stats()` and the outbox counts;
 *  - `/api/actors` (`?status=a,b&actor=&idContains=&limit=&cursor=`) — `troupe.list()`;
 *  - `/api/actors/<id>` (`?limit=` history entries, default 1000) — the actor and its history,
 *    archived generations first;
 *  - `/api/channels` (`?limit=&cursor=`) — channels with subscribers and backlog;
 *  - `/api/groups`, `/api/groups/<name>` — groups with sizes, one group's members;
 *  - `/api/workers` — the worker registry and the leader;
 *  - `/api/events` — Server-Sent Events: a `tick` at once and then every `refreshInterval`.
 * Errors are `{ error: { code, message } }` with 400/401/403/404/405/500/503.
 */
export class DashboardServer {
  private readonly server: http.Server;
  private readonly token: Buffer | undefined;
  private readonly port: number;
  private readonly host: string;
  private readonly tickMs: number;
  private readonly log: Logger;
  private readonly pageContent: DashboardPage;
  private readonly streams = new Set<http.ServerResponse>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly troupe: Troupe,
    options: DashboardOptions = {},
  ) {
    const opts = optionsArg(options, "dashboard options");
    this.port = opts.port ?? DEFAULT_DASHBOARD_PORT;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535)
      throw new ValidationError(`port must be an integer from 0 to 65535, got ${String(opts.port)}`);
    this.host = opts.host ?? "127.0.0.1";
    if (typeof this.host !== "string" || this.host.length === 0)
      throw new ValidationError("host must be a non-empty string");
    if (opts.token !== undefined && (typeof opts.token !== "string" || opts.token.length === 0))
      throw new ValidationError("token must be a non-empty string");
    this.token = opts.token === undefined ? undefined : Buffer.from(opts.token);
    this.tickMs = toMillis(opts.refreshInterval ?? "2s", "refreshInterval");
    if (this.tickMs < 100) throw new ValidationError("refreshInterval must be at least 100ms");
    this.log = opts.logger ?? (() => {});
    this.pageContent = dashboardPage(); // read now: missing asset files fail the start, not a request
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  listen(): Promise<Dashboard> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(this.port, this.host, () => {
        this.server.off("error", onError);
        const a = this.server.address() as AddressInfo;
        const shown = a.family === "IPv6" ? `[${a.address}]` : a.address;
        resolve({
          url: `http://${shown}:${a.port}/`,
          host: a.address,
          port: a.port,
          close: () => this.close(),
        });
      });
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const res of this.streams) res.end();
      this.streams.clear();
      if (!this.server.listening) return;
      const closed = new Promise<void>((r) => this.server.close(() => r()));
      this.server.closeIdleConnections();
      const timer = setTimeout(() => this.server.closeAllConnections(), 2000);
      await closed;
      clearTimeout(timer);
    })();
    return this.closing;
  }

  // ---- request handling -------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      const refused = this.refuse(req, url.searchParams);
      if (refused) reply = refused;
      else {
        const method = req.method ?? "GET";
        if (method !== "GET" && method !== "HEAD")
          reply = {
            status: 405,
            body: errorBody("METHOD_NOT_ALLOWED", "the dashboard is read-only: GET only"),
            headers: { allow: "GET, HEAD" },
          };
        else if (url.pathname === "/" || url.pathname === "/index.html") {
          checkParams(url.searchParams, "page");
          this.page(res);
          return;
        } else if (url.pathname === "/api/events") {
          checkParams(url.searchParams, "events");
          this.events(req, res);
          return;
        } else reply = await this.route(url.pathname, url.searchParams);
      }
    } catch (err) {
      reply = this.failure(err, req);
    }
    const body = toJson(reply.body);
    res.writeHead(reply.status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      ...reply.headers,
    });
    res.end(body);
  }

  /** A request from an unexpected Host (DNS rebinding), or without the token: the reply that refuses it. */
  private refuse(req: http.IncomingMessage, q: Query): Reply | undefined {
    if (!this.token) {
      // Without a token, a page on another site could reach a loopback dashboard through a
      // DNS name it controls (DNS rebinding): then the Host header names that site.
      if (LOOPBACK_BIND.test(this.host) && !LOOPBACK_HOST_HEADER.test(req.headers.host ?? ""))
        return {
          status: 403,
          body: errorBody(
            "HOST_NOT_ALLOWED",
            `this dashboard listens on ${this.host} and answers only requests for localhost; give it a token to serve other host names`,
          ),
        };
      return undefined;
    }
    const m = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "");
    const given = m ? m[1]! : q.get("token");
    if (given !== null && this.sameToken(given)) return undefined;
    return {
      status: 401,
      body: errorBody(
        "UNAUTHORIZED",
        "this dashboard needs its token: Authorization: Bearer <token>, or ?token=<token> in the URL",
      ),
      headers: { "www-authenticate": "Bearer" },
    };
  }

  private sameToken(given: string): boolean {
    const a = Buffer.from(given);
    return a.length === this.token!.length && timingSafeEqual(a, this.token!);
  }

  private page(res: http.ServerResponse): void {
    const { html, headers } = this.pageContent;
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(html),
      "cache-control": "no-store",
      ...headers,
    });
    res.end(html);
  }

  private events(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "x-accel-buffering": "no", // a proxy in front must not buffer the stream
      connection: "close", // a stream is never followed by another request on its connection
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    let seq = 0;
    const tick = () => {
      seq += 1;
      res.write(
        `event: tick\nid: ${seq}\ndata: ${JSON.stringify({ seq, at: new Date().toISOString() })}\n\n`,
      );
    };
    res.write(`retry: ${Math.max(1000, this.tickMs)}\n\n`);
    tick();
    const timer = startInterval(tick, this.tickMs);
    this.streams.add(res);
    const done = () => {
      timer.clear();
      this.streams.delete(res);
    };
    req.once("close", done);
    res.once("close", done);
  }

  private async route(path: string, q: Query): Promise<Reply> {
    const t = this.troupe;
    if (path === "/api/stats") {
      checkParams(q, "stats");
      const actor = textParam(q, "actor");
      const [stats, outbox] = await Promise.all([
        t.stats(actor === undefined ? {} : { actor }),
        t.outboxCounts(),
      ]);
      return { status: 200, body: { stats, outbox } };
    }
    if (path === "/api/actors") {
      checkParams(q, "actors");
      const filter: ListFilter = { limit: intParam(q, "limit", 50, 1, 1000) };
      const status = textParam(q, "status");
      if (status !== undefined) {
        const list = status.split(",");
        for (const s of list)
          if (!STATUSES.includes(s as ActorStatus))
            throw new ValidationError(`status "${s}" is not one of ${STATUSES.join(", ")}`);
        filter.status = list as ActorStatus[];
      }
      const actor = textParam(q, "actor");
      if (actor !== undefined) filter.actor = actor;
      const idContains = textParam(q, "idContains");
      if (idContains !== undefined) filter.idContains = idContains;
      const cursor = textParam(q, "cursor");
      if (cursor !== undefined) filter.cursor = cursor;
      return { status: 200, body: await t.list(filter) };
    }
    const id = segmentAfter(path, "/api/actors/");
    if (id !== undefined) {
      checkParams(q, "actor");
      const limit = intParam(q, "limit", 1000, 1, 10_000);
      const info = await t.get(id);
      if (!info) throw new NotFoundError(`no actor with id "${id}"`);
      const history: HistoryEntry[] = [];
      let truncated = false;
      for await (const e of t.history(id, { pageSize: Math.min(limit + 1, 1000) })) {
        if (history.length === limit) {
          truncated = true;
          break;
        }
        history.push(e);
      }
      return { status: 200, body: { actor: info, history, truncated } };
    }
    if (path === "/api/channels") {
      checkParams(q, "channels");
      const limit = intParam(q, "limit", 200, 1, 1000);
      const cursor = textParam(q, "cursor"); // the last channel name of the previous page
      return { status: 200, body: await t.channels(cursor === undefined ? { limit } : { limit, cursor }) };
    }
    if (path === "/api/groups") {
      checkParams(q, "groups");
      return { status: 200, body: { items: await t.groups() } };
    }
    const group = segmentAfter(path, "/api/groups/");
    if (group !== undefined) {
      checkParams(q, "group");
      const members = await t.members(group);
      if (members.length === 0)
        throw new NotFoundError(`no group named "${group}" (a group exists while it has members)`);
      return { status: 200, body: { group, members } };
    }
    if (path === "/api/workers") {
      checkParams(q, "workers");
      return { status: 200, body: { items: await t.workers() } };
    }
    return { status: 404, body: errorBody("NOT_FOUND", `no route for ${path}`) };
  }

  private failure(err: unknown, req: http.IncomingMessage): Reply {
    if (err instanceof TroupeError) {
      const status = STATUS_BY_CODE[err.code];
      if (status) return { status, body: errorBody(err.code, err.message) };
    }
    this.log("error", `dashboard: ${req.method ?? "GET"} ${req.url ?? "/"} failed`, { error: String(err) });
    return { status: 500, body: errorBody("INTERNAL", "the request failed; see the dashboard's log") };
  }
}

/**
 * Serves the web dashboard for a started Troupe (a client-only one, `worker: false`, is
 * enough) until `close()`. Resolves once listening.
 */
export async function startDashboard(troupe: Troupe, opts: DashboardOptions = {}): Promise<Dashboard> {
  if (!troupe || typeof troupe !== "object") throw new ValidationError("startDashboard needs a Troupe");
  // NOT_STARTED now (before start()) rather than on the first request.
  if (!troupe.started) throw new NotStartedError("startDashboard");
  return new DashboardServer(troupe, opts).listen();
}
