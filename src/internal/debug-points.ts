import type { Troupe } from "../troupe.js";

/**
 * Debug points: named places in the engine ("step:after-fn", "receive:before-wait",
 * "deliver:done" …) where a test can pause the process or kill it, to hit an exact race
 * window (as DBOS does with its debugpoint.ts). Not part of the public API: a test installs
 * a hook for one Troupe before starting it; in production there is none and each point is
 * a no-op.
 */
export type DebugPointHook = (name: string, info: Record<string, unknown>) => void | Promise<void>;

/** What the engine calls at each point. */
export type DebugPoint = (name: string, info: Record<string, unknown>) => Promise<void>;

const hooks = new WeakMap<Troupe, DebugPointHook>();

const none: DebugPoint = async () => {};

/**
 * Installs the hook for `troupe`'s engine (undefined removes it). Install it before
 * `start()`: the Troupe reads it when it builds its worker.
 */
export function setDebugPoint(troupe: Troupe, hook: DebugPointHook | undefined): void {
  if (hook === undefined) hooks.delete(troupe);
  else if (typeof hook !== "function") throw new TypeError("a debug point hook must be a function");
  else hooks.set(troupe, hook);
}

/** The debug points of `troupe`'s engine: its hook, or a no-op. */
export function debugPointsFor(troupe: Troupe): DebugPoint {
  const hook = hooks.get(troupe);
  return hook ? async (name, info) => hook(name, info) : none;
}
