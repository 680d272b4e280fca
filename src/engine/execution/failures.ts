import { LockLostError, TroupeError } from "../../api/errors.js";
import { isConnectionError } from "../../storage/db-errors.js";

/**
 * Deadlocks, serialization failures and lost connections (DatabaseUnavailableError): the
 * database's "try again". Never journaled as an operation's outcome: the execution is
 * abandoned and replayed instead.
 */
export function isTransientDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("40")) return true;
  return isConnectionError(err);
}

/** A typed outcome an operation keeps on replay; not a lost lease, nor the database being away. */
export function isJournaledError(err: unknown): boolean {
  return err instanceof TroupeError && !(err instanceof LockLostError) && !isTransientDatabaseError(err);
}

/** Never settles: given to actor code after the execution was abandoned, so it simply stops. */
export const forever = <T>() => new Promise<T>(() => {});
