import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { toMillis, type Duration } from "../duration.js";
import { IngestError, NotStartedError, TroupeError, ValidationError } from "../api/errors.js";
import type { Logger } from "../options.js";
import type { OutboxRelay } from "../outbox/relay.js";
import type { Troupe } from "../troupe.js";
import { readEvent } from "./ingest.js";
import { STATUS_BY_CODE, errorBody } from "./http-errors.js";
import { startTimeout, type Timer } from "../timers.js";

export interface ServerOptions {
  troupe: Troupe;
  /** Started with the server and stopped with it. */
  outboxRelay?: OutboxRelay;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default "127.0.0.1"; use "0.0.0.0" to accept connections from other hosts. */
  host?: string;
  /** Largest request body accepted by POST /events (default 1 MiB); larger → 413. */
  maxBodyBytes?: number;
  /** When set, POST /events needs `Authorization: Bearer <token>` (health endpoints stay open). */
  token?: string;
  /** How long /readyz waits for the database (default "2s"). */
  readyTimeout?: Duration;
  /** How long stop() lets open requests finish before closing their connections (default "5s"). */
  shutdownTimeout?: Duration;
  logger?: Logger;
}

type Reply = { status: number; body: unknown; headers?: Record<string, string> };

class BodyTooLarge extends Error {}
class ClientGone extends Error {}

/**
 * troupe's HTTP front door (node:http):
 *  - GET /healthz — the process is alive → 200;
 *  - GET /readyz — the database answers `SELECT 1` → 200, else 503 (also while stopping);
 *  - POST /events — a CloudEvent (binary or structured mode) published to the channel named
 *    by its type, or sent to one actor's mailbox when the `troupeactor` extension names it.
 *    202 `{ id, channel }`; 400/404/413/415 `{ error: { code, message } }` with the reason.
 * The event's attributes travel as `metadata.cloudevent`; a repeat of the same source + id
 * is accepted again but not delivered twice (it answers with the first message's id).
 */
export class TroupeServer {
  readonly server: http.Server;
  private readonly troupe: Troupe;
  private readonly relay: OutboxRelay | undefined;
  private readonly port: number;
  private readonly host: string;
  private readonly maxBody: number;
  private readonly token: Buffer | undefined;
  private readonly readyMs: number;
  private readonly shutdownMs: number;
  private readonly log: Logger;
  private starting: Promise<{ host: string; port: number; url: string }> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(opts: ServerOptions) {
    if (!opts?.troupe) throw new ValidationError("createServer needs { troupe }");
    this.troupe = opts.troupe;
    this.relay = opts.outboxRelay;
    this.port = opts.port ?? 8080;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535)
      throw new ValidationError(`port must be an integer from 0 to 65535, got ${String(opts.port)}`);
    this.host = opts.host ?? "127.0.0.1";
    this.maxBody = opts.maxBodyBytes ?? 1024 * 1024;
    if (!Number.isInteger(this.maxBody) || this.maxBody < 1)
      throw new ValidationError("maxBodyBytes must be a positive integer");
    this.token = opts.token === undefined ? undefined : Buffer.from(opts.token);
    this.readyMs = toMillis(opts.readyTimeout ?? "2s", "readyTimeout");
    this.shutdownMs = toMillis(opts.shutdownTimeout ?? "5s", "shutdownTimeout");
    this.log = opts.logger ?? (() => {});
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  /** Listens (and starts the relay). Resolves with the bound address. Idempotent. */
  start(): Promise<{ host: string; port: number; url: string }> {
    if (this.stopping) return Promise.reject(new NotStartedError("this server", { stopped: true }));
    this.starting ??= new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(this.port, this.host, () => {
        this.server.off("error", onError);
        this.relay?.start();
        resolve(this.address()!);
      });
    });
    return this.starting;
  }

  /** The bound address, once listening. */
  address(): { host: string; port: number; url: string } | null {
    const a = this.server.address() as AddressInfo | null;
    if (!a || typeof a !== "object") return null;
    const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
    return { host: a.address, port: a.port, url: `http://${host}:${a.port}` };
  }

  /** Stops accepting, lets open requests finish (up to shutdownTimeout), stops the relay. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => {});
      if (this.server.listening) {
        const closed = new Promise<void>((r) => this.server.close(() => r()));
        this.server.closeIdleConnections();
        const timer = startTimeout(() => this.server.closeAllConnections(), this.shutdownMs);
        await closed;
        timer.clear();
      }
      await this.relay?.stop();
    })();
    return this.stopping;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.route(req);
    } catch (err) {
      reply = this.failure(err);
    }
    const body = JSON.stringify(reply.body);
    const headers: Record<string, string | number> = {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      ...reply.headers,
    };
    // A request we stopped reading cannot share its connection with the next one.
    if (!req.complete) headers.connection = "close";
    res.writeHead(reply.status, headers);
    res.end(body, () => {
      if (!req.complete) req.destroy();
    });
  }

  private async route(req: http.IncomingMessage): Promise<Reply> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const method = req.method ?? "GET";
    if (path === "/healthz" || path === "/readyz") {
      if (method !== "GET" && method !== "HEAD")
        return {
          status: 405,
          body: errorBody("METHOD_NOT_ALLOWED", `${path} accepts GET`),
          headers: { allow: "GET, HEAD" },
        };
      return path === "/healthz" ? { status: 200, body: { status: "ok" } } : this.ready();
    }
    if (path === "/events") {
      if (method !== "POST")
        return {
          status: 405,
          body: errorBody("METHOD_NOT_ALLOWED", "/events accepts POST (a CloudEvent)"),
          headers: { allow: "POST" },
        };
      return this.ingest(req);
    }
    return { status: 404, body: errorBody("NOT_FOUND", `no route for ${method} ${path}`) };
  }

  private async ready(): Promise<Reply> {
    const relay = this.relay ? { outboxRelay: this.relay.running ? "running" : "stopped" } : {};
    if (this.stopping) return { status: 503, body: { status: "stopping", ...relay } };
    let timer: Timer | undefined;
    try {
      const ping = this.troupe.ping();
      const timeout = new Promise<never>((_, reject) => {
        timer = startTimeout(() => reject(new Error(`no answer within ${this.readyMs} ms`)), this.readyMs);
      });
      await Promise.race([ping, timeout]);
      return { status: 200, body: { status: "ok", database: "ok", ...relay } };
    } catch (err) {
      return {
        status: 503,
        body: { status: "unavailable", database: err instanceof Error ? err.message : String(err), ...relay },
      };
    } finally {
      timer?.clear();
    }
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (!this.token) return true;
    const m = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "");
    if (!m) return false;
    const given = Buffer.from(m[1]!);
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  private async ingest(req: http.IncomingMessage): Promise<Reply> {
    if (!this.authorized(req))
      return {
        status: 401,
        body: errorBody("UNAUTHORIZED", "POST /events needs Authorization: Bearer <token>"),
        headers: { "www-authenticate": "Bearer" },
      };
    const body = await this.readBody(req);
    const ev = readEvent(req.headers, body);
    const type = ev.attributes.type as string;
    const opts = { metadata: { cloudevent: ev.attributes }, idempotencyKey: ev.idempotencyKey };
    const { id } = ev.targetActor
      ? await this.troupe.send(ev.targetActor, type, ev.data, opts)
      : await this.troupe.publish(type, ev.data, opts);
    return {
      status: 202,
      body: { id, channel: type, ...(ev.targetActor ? { actor: ev.targetActor } : {}) },
    };
  }

  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > this.maxBody) return Promise.reject(new BodyTooLarge());
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxBody) {
          req.off("data", onData);
          req.pause();
          reject(new BodyTooLarge());
          return;
        }
        chunks.push(chunk);
      };
      req.on("data", onData);
      req.once("end", () => resolve(Buffer.concat(chunks)));
      req.once("error", reject);
      req.once("close", () => {
        if (!req.complete)
          reject(new ClientGone("the client closed the connection before sending the whole body"));
      });
    });
  }

  private failure(err: unknown): Reply {
    if (err instanceof BodyTooLarge)
      return {
        status: 413,
        body: errorBody("PAYLOAD_TOO_LARGE", `the request body is larger than ${this.maxBody} bytes`),
      };
    if (err instanceof ClientGone) return { status: 400, body: errorBody("INCOMPLETE_BODY", err.message) };
    if (err instanceof IngestError) return { status: err.status, body: errorBody(err.code, err.message) };
    if (err instanceof TroupeError) {
      const status = STATUS_BY_CODE[err.code];
      if (status) return { status, body: errorBody(err.code, err.message) };
    }
    this.log("error", "POST /events failed", { error: String(err) });
    return {
      status: 500,
      body: errorBody("INTERNAL", "the event could not be accepted; see the server log"),
    };
  }
}

/** An HTTP server for a started Troupe; call `start()` to listen. */
export function createServer(opts: ServerOptions): TroupeServer {
  return new TroupeServer(opts);
}
