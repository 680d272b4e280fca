import { DatabaseUnavailableError } from "../api/errors.js";

/** Node socket errors that mean "the server is not there (any more)". */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** SQLSTATEs of a server going away or refusing us; not of a statement that is wrong. */
function connectionState(code: string): boolean {
  return (
    code.startsWith("08") || // connection exception (08000, 08003, 08006, 08001, 08004, 08P01 …)
    code === "57P01" || // admin_shutdown (pg_terminate_backend, fast shutdown)
    code === "57P02" || // crash_shutdown (another backend crashed, immediate shutdown)
    code === "57P03" || // cannot_connect_now (starting up, shutting down, recovering)
    code === "53300" // too_many_connections
  );
}

/**
 * node-postgres and pg-pool messages for a dead or unobtainable connection (they carry no
 * code). "Query read timeout": no reply within the client-side statement limit (a
 * half-open connection); the client is destroyed, the statement's outcome is unknown.
 */
const CONNECTION_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i;

/**
 * True for an error that says the database connection failed, not the statement: the same
 * call can succeed once the database is back. Constraint violations, syntax errors,
 * serialization failures and deadlocks are not (they are about the statement or its
 * transaction, and keep their own codes).
 */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (connectionState(code) || SOCKET_CODES.has(code))) return true;
  // AggregateError from net.connect trying several addresses (::1 and 127.0.0.1).
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0 && inner.every(isConnectionError)) return true;
  const message = err instanceof Error ? err.message : "";
  return CONNECTION_MESSAGES.test(message);
}

/** The error a caller sees: a connection failure becomes DatabaseUnavailableError (cause: the driver's error). */
export function mapDatabaseError(err: unknown): unknown {
  if (err instanceof DatabaseUnavailableError || !isConnectionError(err)) return err;
  const code = (err as { code?: unknown }).code;
  const detail = err instanceof Error && err.message ? err.message : String(code ?? err);
  return new DatabaseUnavailableError(
    `the database is unavailable (${typeof code === "string" ? `${code}: ` : ""}${detail}); retry later`,
    { cause: err },
  );
}
