/** The shape of one `troupe` command: src/cli/main.ts dispatches to these. */
import type { ParseArgsConfig } from "node:util";
import type { Troupe } from "../troupe.js";
import type { Output } from "./output.js";

/** `parseArgs` option definitions. */
export type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

/** Parsed flag values, by flag name (each command reads its own). */
export type FlagValues = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

/** Runs a prepared command on a started Troupe; resolves with the exit code. */
export type Runner = (troupe: Troupe, out: Output) => Promise<number>;

export interface Command {
  readonly name: string;
  /** Its lines under "Commands:" in `troupe --help`. */
  readonly help: string;
  /** The flags this command reads besides the global ones (the same flag may serve several commands). */
  readonly options?: OptionSpecs;
  /** How the command opens the Troupe (default: the schema must be there already). */
  readonly open?: { migrate?: boolean; statementTimeout?: false };
  /**
   * Checks what can be checked before any database is opened (a bad flag value throws a
   * ValidationError) and returns what runs once the Troupe started.
   */
  prepare(values: FlagValues, args: readonly string[]): Runner;
}

/** A string flag's value (parseArgs guarantees the type for a `type: "string"` option). */
export const text = (values: FlagValues, flag: string): string | undefined =>
  values[flag] as string | undefined;
