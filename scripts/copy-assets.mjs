#!/usr/bin/env node
// After tsc (which compiles TypeScript only): copies the dashboard page's files next to the
// compiled server, dist/dashboard/assets/, where src/dashboard/page.ts reads them at run time.
// Their tsconfig.json (type-checking the page's script) is not needed there.
import { cpSync, rmSync } from "node:fs";
import { basename } from "node:path";

const from = new URL("../src/dashboard/assets/", import.meta.url);
const to = new URL("../dist/dashboard/assets/", import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true, filter: (src) => basename(src) !== "tsconfig.json" });
