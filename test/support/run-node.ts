import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root: child processes run there so relative paths (src/cli.ts) resolve. */
export const REPO = fileURLToPath(new URL("../../", import.meta.url));

export interface NodeRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node --import tsx …args` in the repository to its end and collects its output.
 * The child sees no database or Redis from our environment (only what `env` or the args
 * give it), so a test can never reach a server it did not mean to.
 */
export function runNode(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<NodeRun> {
  const childEnv = { ...env };
  delete childEnv.TROUPE_DATABASE_URL;
  delete childEnv.DATABASE_URL;
  delete childEnv.REDIS_URL;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], {
      cwd: REPO,
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
