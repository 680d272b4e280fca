import { checkActorDefinition, type ActorDefinition } from "../actor.js";
import { UnknownActorError, ValidationError } from "../api/errors.js";
import { checkName } from "../names.js";

/**
 * The actor types a Troupe knows, by name. The worker runs what is here; spawn() and
 * schedule() resolve a definition or a name against it.
 */
export class ActorRegistry {
  constructor(private readonly byName: Map<string, ActorDefinition>) {}

  /** Adds an actor type; one name cannot stand for two different definitions. */
  register(def: ActorDefinition): void {
    checkActorDefinition(def, "register()");
    const existing = this.byName.get(def.name);
    if (existing && existing !== def)
      throw new ValidationError(`two different actors are named "${def.name}"`);
    this.byName.set(def.name, def);
  }

  /** The definition `def` names, checked; not registered yet (see ensure). */
  resolve(def: ActorDefinition | string, what: string): ActorDefinition {
    if (typeof def === "string") {
      checkName(def, "actor name");
      const found = this.byName.get(def);
      if (!found) throw new UnknownActorError(def);
      return found;
    }
    if (typeof def !== "object" || def === null)
      throw new ValidationError(`${what} expects an actor definition or a registered actor name`);
    checkActorDefinition(def, what);
    const found = this.byName.get(def.name);
    if (found && found !== def) throw new ValidationError(`another actor is registered as "${def.name}"`);
    return def;
  }

  /** Registers a resolved definition unless it is there: called once the whole call is valid. */
  ensure(def: ActorDefinition): void {
    if (!this.byName.has(def.name)) this.register(def);
  }
}
