import type { ActorContext } from "./api/actor-context.js";
import { optionsArg } from "./arguments.js";
import { ValidationError } from "./api/errors.js";
import { checkName } from "./names.js";

export type ActorFn<I, O> = (ctx: ActorContext, input: I) => Promise<O>;

export interface ActorOptions {
  /** Free-form description shown by the CLI and dashboard. */
  description?: string;
}

/** A registered actor type: a name and the async function every instance runs. */
export interface ActorDefinition<I = any, O = any> {
  readonly kind: "troupe.actor";
  readonly name: string;
  readonly fn: ActorFn<I, O>;
  readonly options: ActorOptions;
}

/**
 * Defines an actor type. The function is replayed from its journal after a crash or
 * restart, so everything non-deterministic must go through `ctx` (step, now, random …).
 */
export function actor<I = any, O = any>(
  name: string,
  fn: ActorFn<I, O>,
  options?: ActorOptions,
): ActorDefinition<I, O> {
  checkName(name, "actor name");
  if (typeof fn !== "function")
    throw new ValidationError(`actor "${name}": the second argument must be an async function`);
  const opts = optionsArg(options, `actor "${name}" options`);
  if (opts.description !== undefined && typeof opts.description !== "string")
    throw new ValidationError(`actor "${name}": description must be a string`);
  return Object.freeze({ kind: "troupe.actor" as const, name, fn, options: opts });
}

export function isActorDefinition(x: unknown): x is ActorDefinition {
  return typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "troupe.actor";
}

/**
 * A definition as actor() would have made it. Anyone can build an object with
 * `kind: "troupe.actor"`; its name goes into every claim and sweep of the worker that
 * registers it, so it is checked before it is registered, never after.
 */
export function checkActorDefinition(x: unknown, what: string): ActorDefinition {
  if (!isActorDefinition(x)) throw new ValidationError(`${what} expects a definition made by actor()`);
  checkName(x.name, "actor name");
  if (typeof x.fn !== "function")
    throw new ValidationError(`actor "${x.name}": fn must be an async function`);
  return x;
}
