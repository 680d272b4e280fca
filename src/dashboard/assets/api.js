// @ts-check
/**
 * The dashboard page's script, part 2 of 5 (see dom.js): the JSON API it reads, with the
 * page's ?token= passed on as a Bearer header.
 */
/* exported token, ApiError, api */

/**
 * What the API answers (src/dashboard/server.ts):
 * @typedef {{ code?: string, name?: string, message: string, stack?: string }} ShownError
 * @typedef {{ id: string, actor: string, status: string, generation: number, startedAt: string,
 *   updatedAt: string, finishedAt?: string | null, input?: unknown, output?: unknown,
 *   error?: ShownError | null }} ActorInfo
 * @typedef {{ generation: number, seq: number, kind: string, name: string, result?: unknown,
 *   error?: ShownError | null, at: string }} HistoryEntry
 * @typedef {{ name: string, mode: string, subscribers: number, waiting: number, backlog: number,
 *   behind: number | null, oldestBacklogAt: string | null }} ChannelSummary
 * @typedef {{ id: string, hostname: string, pid: number, concurrency: number, startedAt: string,
 *   heartbeatAgeMs: number, leader: boolean }} WorkerSummary
 * @typedef {{ byStatus: Record<string, number | undefined>,
 *   durationMs: { p50: number | null, p95: number | null }, throughputPerSec: number | null }} Stats
 * @typedef {{ pending: number, processing: number, sent: number, dead: number }} OutboxCounts
 * @typedef {{ error?: { code: string, message: string } }} ErrorBody
 */
/**
 * @template T
 * @typedef {{ items: T[], nextCursor?: string }} Page
 */

const token = new URLSearchParams(location.search).get("token");

/** An answer other than 2xx: its status, and the server's `code: message` when it gave one. */
class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   */
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}
/**
 * GETs an API path relative to the page; `body` is the parsed JSON, `text` the raw answer.
 * @param {string} path
 * @param {Record<string, string | null | undefined>} [query]
 * @returns {Promise<{ body: unknown, text: string }>}
 */
async function api(path, query) {
  const url = new URL(path, location.href);
  url.search = "";
  if (query)
    Object.keys(query).forEach((k) => {
      const v = query[k];
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
    });
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  const res = await fetch(url, { headers, cache: "no-store" });
  const text = await res.text();
  /** @type {unknown} */
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!res.ok) {
    const error = body ? /** @type {ErrorBody} */ (body).error : undefined;
    throw new ApiError(error ? error.code + ": " + error.message : "HTTP " + res.status, res.status);
  }
  return { body, text };
}
