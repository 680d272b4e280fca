import type { AsyncLocalStorage } from "node:async_hooks";
import { ValidationError } from "./api/errors.js";

/**
 * Carries one ambient value (trace context, tenant, caller …) from the code that spawns
 * or publishes into the durable record, and back into the actor and its steps.
 */
export interface ContextCodec {
  /** Stable key in the stored snapshot. */
  readonly key: string;
  /** The current value as JSON, or undefined when there is none. */
  capture(): unknown;
  /** Runs `fn` with the value restored. */
  restore<T>(value: unknown, fn: () => T): T;
}

/** A codec for an AsyncLocalStorage, with optional conversion to and from JSON. */
export function asyncLocalContext<T>(
  key: string,
  storage: AsyncLocalStorage<T>,
  convert: { encode?: (v: T) => unknown; decode?: (json: unknown) => T } = {},
): ContextCodec {
  return {
    key,
    capture: () => {
      const v = storage.getStore();
      return v === undefined ? undefined : convert.encode ? convert.encode(v) : v;
    },
    restore: (value, fn) => storage.run(convert.decode ? convert.decode(value) : (value as T), fn),
  };
}

export type ContextSnapshot = Record<string, unknown>;

export class ContextPropagation {
  constructor(private readonly codecs: readonly ContextCodec[]) {
    const keys = new Set<string>();
    for (const c of codecs) {
      if (typeof c?.key !== "string" || typeof c.capture !== "function" || typeof c.restore !== "function") {
        throw new ValidationError("each context codec needs a key, capture() and restore()");
      }
      if (keys.has(c.key)) throw new ValidationError(`two context codecs use the key "${c.key}"`);
      keys.add(c.key);
    }
  }

  /** The snapshot to store, or null when no codec has a value (nothing stored). */
  capture(): ContextSnapshot | null {
    let out: ContextSnapshot | null = null;
    for (const c of this.codecs) {
      const v = c.capture();
      if (v === undefined) continue;
      let json: unknown;
      try {
        json = JSON.parse(JSON.stringify(v));
      } catch (err) {
        throw new ValidationError(`context "${c.key}" is not JSON-serialisable: ${(err as Error).message}`);
      }
      (out ??= {})[c.key] = json;
    }
    return out;
  }

  /** Runs `fn` inside every stored value (codecs without a value in the snapshot are skipped). */
  restore<T>(snapshot: ContextSnapshot | null | undefined, fn: () => T): T {
    if (!snapshot) return fn();
    let run = fn;
    for (const c of this.codecs) {
      if (!(c.key in snapshot)) continue;
      const inner = run;
      run = () => c.restore(snapshot[c.key], inner);
    }
    return run();
  }
}
