/**
 * Timers for any valid duration. Node's setTimeout and setInterval take at most 2^31−1 ms
 * (~24.8 days) and fire a longer delay after 1 ms instead (TimeoutOverflowWarning), while
 * troupe's durations go up to 100 years. Every duration that becomes a timer goes through
 * here: a long delay is waited out in steps of at most that limit, re-armed until the whole
 * delay has passed (counted on the timers' own monotonic clock, never on the wall clock).
 */

/** The longest delay Node's timers take. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Timer {
  /** Cancels it; idempotent. */
  clear(): void;
  /** Lets the process exit while it is pending. */
  unref(): Timer;
}

/** setTimeout for any delay up to 100 years. */
export function startTimeout(fn: () => void, ms: number): Timer {
  let left = Math.max(0, ms);
  let handle: NodeJS.Timeout | undefined;
  let unref = false;
  let cleared = false;
  const arm = () => {
    const step = Math.min(left, MAX_TIMER_MS);
    handle = setTimeout(() => {
      left -= step;
      if (left > 0) arm();
      else fn();
    }, step);
    if (unref) handle.unref();
  };
  arm();
  return {
    clear() {
      cleared = true;
      clearTimeout(handle);
    },
    unref() {
      unref = true;
      if (!cleared) handle?.unref();
      return this;
    },
  };
}

/** setInterval for any period up to 100 years. */
export function startInterval(fn: () => void, ms: number): Timer {
  if (ms <= MAX_TIMER_MS) {
    const handle = setInterval(fn, ms);
    return {
      clear: () => clearInterval(handle),
      unref() {
        handle.unref();
        return this;
      },
    };
  }
  let current: Timer;
  let unref = false;
  let cleared = false;
  const next = () => {
    current = startTimeout(() => {
      if (cleared) return;
      next();
      fn();
    }, ms);
    if (unref) current.unref();
  };
  next();
  return {
    clear() {
      cleared = true;
      current.clear();
    },
    unref() {
      unref = true;
      current.unref();
      return this;
    },
  };
}

/** A promise that resolves after `ms` (up to 100 years) without keeping the process alive. */
export function delay(ms: number): Promise<void> {
  return new Promise<void>((resolve) => void startTimeout(resolve, ms).unref());
}
