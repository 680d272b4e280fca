import { NonRetryableError, StepTimeoutError, ValidationError } from "../api/errors.js";
import { toMillis, type Duration } from "../duration.js";
import { delay, startTimeout, type Timer } from "../timers.js";

export interface RetryPolicy {
  /** Total attempts including the first (default 3). 1 = no retries. */
  maxAttempts?: number;
  /** Delay before the first retry (default 100ms). */
  initialDelay?: Duration;
  /** Multiplier per retry (default 2). */
  backoff?: number;
  /** Cap on a single delay (default 30s). */
  maxDelay?: Duration;
}

export interface ResolvedRetry {
  maxAttempts: number;
  initialMs: number;
  backoff: number;
  maxMs: number;
}

export function resolveRetry(p: RetryPolicy | undefined, what: string): ResolvedRetry {
  const maxAttempts = p?.maxAttempts ?? 3;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) {
    throw new ValidationError(`${what}: retry.maxAttempts must be an integer from 1 to 1000`);
  }
  const backoff = p?.backoff ?? 2;
  if (typeof backoff !== "number" || !(backoff >= 1) || backoff > 100) {
    throw new ValidationError(`${what}: retry.backoff must be a number from 1 to 100`);
  }
  return {
    maxAttempts,
    initialMs: toMillis(p?.initialDelay ?? 100, `${what}: retry.initialDelay`),
    backoff,
    maxMs: toMillis(p?.maxDelay ?? "30s", `${what}: retry.maxDelay`),
  };
}

/** Exponential backoff with ±20% jitter so retrying actors do not move in lockstep. */
export function retryDelay(r: ResolvedRetry, attempt: number): number {
  const base = Math.min(r.maxMs, r.initialMs * r.backoff ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface AttemptInfo {
  attempt: number;
  /** Aborted when the step's timeout passes; long steps should honour it. */
  signal: AbortSignal;
}

/** Runs one attempt, rejecting with StepTimeoutError (and aborting the signal) after `timeoutMs`. */
async function attemptWithTimeout<T>(
  name: string,
  fn: (a: AttemptInfo) => Promise<T> | T,
  attempt: number,
  timeoutMs: number | undefined,
): Promise<T> {
  const ctrl = new AbortController();
  if (timeoutMs === undefined) return fn({ attempt, signal: ctrl.signal });
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = startTimeout(() => {
      const err = new StepTimeoutError(name, timeoutMs);
      ctrl.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => fn({ attempt, signal: ctrl.signal })), timeout]);
  } finally {
    timer?.clear();
  }
}

/** Retries `fn` per policy. NonRetryableError (or `isFatal`) ends it at once. */
export async function runWithRetry<T>(
  name: string,
  fn: (a: AttemptInfo) => Promise<T> | T,
  policy: ResolvedRetry,
  timeoutMs: number | undefined,
  isFatal: (err: unknown) => boolean = () => false,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptWithTimeout(name, fn, attempt, timeoutMs);
    } catch (err) {
      if (err instanceof NonRetryableError || isFatal(err) || attempt >= policy.maxAttempts) throw err;
      await delay(retryDelay(policy, attempt));
    }
  }
}
