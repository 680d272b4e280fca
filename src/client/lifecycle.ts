import { nanoid } from "nanoid";
import type { ActorDefinition } from "../actor.js";
import { optionsArg } from "../arguments.js";
import { encode, jsonText } from "../codec.js";
import { ActorIdConflictError, NotCancellableError, NotFoundError } from "../api/errors.js";
import { checkName, checkText } from "../names.js";
import type { ActorRef } from "../ref.js";
import type { ActorRow } from "../storage/rows.js";
import type { SpawnOptions } from "../api/types.js";
import type { ClientDeps } from "./troupe-deps.js";

/** Starting and cancelling actors from outside any actor. */
export class ActorLifecycle {
  constructor(
    private readonly c: ClientDeps,
    private readonly ref: <O>(id: string) => ActorRef<O>,
  ) {}

  /** See Troupe.spawn. */
  async spawn<I, O>(
    def: ActorDefinition<I, O> | string,
    input: I,
    options?: SpawnOptions,
  ): Promise<ActorRef<O>> {
    const storage = this.c.storage("spawn");
    const opts = optionsArg(options, "spawn options");
    const resolved = this.c.actors.resolve(def, "spawn()");
    const id = opts.id === undefined ? nanoid() : checkName(opts.id, "actor id", 255);
    const uniqueKey = opts.uniqueKey === undefined ? undefined : checkName(opts.uniqueKey, "uniqueKey", 255);
    const idempotencyKey =
      opts.idempotencyKey === undefined ? undefined : checkName(opts.idempotencyKey, "idempotencyKey", 255);
    if (idempotencyKey) {
      const first = await storage.actors.byIdempotencyKey(idempotencyKey);
      if (first) return this.ref<O>(first.id);
    }
    const bytes = encode(input, { maxBytes: this.c.maxPayloadBytes, what: "input" });
    this.c.actors.ensure(resolved); // only once everything is valid: a failing spawn changes nothing
    const { row, created } = await storage.actors.create({
      id,
      actor: resolved.name,
      input: bytes,
      inputJson: jsonText(bytes),
      uniqueKey,
      idempotencyKey,
      context: this.c.propagation.capture(),
    });
    if (!created && row.actor !== resolved.name) throw new ActorIdConflictError(row.id, row.actor);
    if (created) this.c.wake([{ kind: "actor", key: row.id }]);
    return this.ref<O>(row.id);
  }

  /** See Troupe.cancel. */
  async cancel(id: string, reason?: string): Promise<void> {
    checkName(id, "actor id", 255);
    if (reason !== undefined) checkText(reason, "cancel reason", 1000);
    const storage = this.c.storage("cancel");
    const out = await storage.cancellation.cancel(id, reason ?? null);
    switch (out.kind) {
      case "not-found":
        throw new NotFoundError(`no actor with id "${id}"`);
      case "finished":
        throw new NotCancellableError(id, out.status);
      case "cancelled":
        this.c.wake([
          { kind: "finished", key: id },
          { kind: "cancel", key: id },
        ]);
        this.c.cancelled(id, reason ?? null);
        return;
      case "compensating":
        this.c.wake([
          { kind: "cancel", key: id },
          { kind: "actor", key: id },
        ]);
        return;
      case "requested":
        this.c.wake([{ kind: "cancel", key: id }]);
        return;
      case "already-cancelled":
        return;
    }
  }

  /** The actor's row, for ActorRef (status, result). */
  row(id: string): Promise<ActorRow | null> {
    return this.c.storage("get").actors.get(id);
  }
}
