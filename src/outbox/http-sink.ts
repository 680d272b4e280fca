import { toMillis, type Duration } from "../duration.js";
import { SinkError, ValidationError } from "../api/errors.js";
import { binaryBody, binaryHeaders, type CloudEvent } from "./cloudevent.js";
import type { OutboxSink } from "./sink.js";

export interface HttpSinkOptions {
  /** http:// or https:// endpoint receiving a POST per event. */
  url: string | URL;
  /**
   * "binary" (default): attributes as `ce-*` headers, data as the body with its
   * datacontenttype. "structured": the whole event as `application/cloudevents+json`.
   */
  mode?: "binary" | "structured";
  /** Extra headers on every request (e.g. authorization); a function is called per request. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** Per-request timeout (default "30s"). Keep it below the relay's processingTimeout. */
  timeout?: Duration;
}

/** Statuses worth retrying: timeouts, rate limits, "too early". Every other 4xx is the request's fault. */
const RETRYABLE_4XX = new Set([408, 425, 429]);
const MAX_ERROR_BODY = 300;

/** `Retry-After` as delta-seconds or an HTTP date. */
function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Like AbortSignal.any (also on Node 20.0–20.2), with explicit cleanup so long-lived signals collect no listeners. */
function anySignal(signals: AbortSignal[]): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  const cleanups: (() => void)[] = [];
  for (const s of signals) {
    if (s.aborted) {
      ctl.abort(s.reason);
      break;
    }
    const onAbort = () => ctl.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    cleanups.push(() => s.removeEventListener("abort", onAbort));
  }
  return { signal: ctl.signal, dispose: () => cleanups.forEach((c) => c()) };
}

/** fetch reports network failures as "fetch failed" with the useful part in `cause`. */
function describe(err: unknown): string {
  const e = err as Error & { cause?: unknown };
  const cause = e.cause as (Error & { code?: string }) | undefined;
  if (cause instanceof Error) return cause.message || cause.code || cause.name;
  return e.message ?? String(err);
}

/** Encodes an event as an HTTP request in the CloudEvents HTTP binding. */
export function httpRequestFor(
  event: CloudEvent,
  mode: "binary" | "structured",
): { headers: Record<string, string>; body: Buffer | undefined } {
  if (mode === "structured") {
    return {
      headers: { "content-type": "application/cloudevents+json; charset=utf-8" },
      body: Buffer.from(JSON.stringify(event), "utf8"),
    };
  }
  const headers = binaryHeaders(event);
  const payload = binaryBody(event);
  if (payload) headers["content-type"] = payload.contentType;
  return { headers, body: payload?.body };
}

/**
 * The built-in sink: one HTTP POST per event (global fetch). A 2xx response is success.
 * 408, 425, 429 and 5xx (and network errors, timeouts) are retried, honouring `Retry-After`;
 * any other status (400, 401, 403, 404, 413, 422 …) is permanent: the event is dead-lettered
 * at once, since sending the same request again cannot succeed — fix the cause, then redrive.
 */
export function httpSink(opts: HttpSinkOptions): OutboxSink {
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    // Not echoed: a malformed URL may still hold a password, and redaction needs a URL.
    throw new ValidationError("httpSink: url is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ValidationError(`httpSink: the url must be http:// or https://, got ${url.protocol}`);
  const mode = opts.mode ?? "binary";
  if (mode !== "binary" && mode !== "structured")
    throw new ValidationError(`httpSink: mode must be "binary" or "structured", got ${String(mode)}`);
  const timeoutMs = toMillis(opts.timeout ?? "30s", "httpSink timeout");
  const target = url.toString();

  return {
    async send(event, info) {
      const req = httpRequestFor(event, mode);
      const extra = typeof opts.headers === "function" ? await opts.headers() : (opts.headers ?? {});
      const timeout = AbortSignal.timeout(timeoutMs);
      const combined = anySignal([info.signal, timeout]);
      let res: Response;
      let text = "";
      try {
        res = await fetch(target, {
          method: "POST",
          headers: { ...extra, ...req.headers },
          ...(req.body ? { body: req.body } : {}),
          signal: combined.signal,
        });
        text = await res.text(); // drain, so the connection can be reused
      } catch (err) {
        const reason = timeout.aborted
          ? `timed out after ${timeoutMs} ms`
          : info.signal.aborted
            ? "aborted (relay stopping)"
            : describe(err);
        throw new SinkError(`POST ${target} failed: ${reason}`, { cause: err });
      } finally {
        combined.dispose();
      }
      if (res.ok) return;
      const status = res.status;
      const permanent = status >= 400 && status < 500 && !RETRYABLE_4XX.has(status);
      const after = retryAfter(res.headers.get("retry-after"));
      throw new SinkError(
        `POST ${target} answered ${status}${text ? `: ${text.slice(0, MAX_ERROR_BODY)}` : ""}`,
        { permanent, status, ...(after === undefined ? {} : { retryAfterMs: after }) },
      );
    },
  };
}
