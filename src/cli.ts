#!/usr/bin/env node
/**
 * The `troupe` executable (package.json "bin": dist/cli.js). The commands live in src/cli/;
 * this file runs one command line and turns a failure into a message and exit code 2.
 */
import { main } from "./cli/main.js";

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error & { code?: string };
    process.stderr.write(`troupe: ${e.code ? `[${e.code}] ` : ""}${e.message}\n`);
    process.exit(2);
  },
);
