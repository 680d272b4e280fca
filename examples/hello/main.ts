/**
 * hello — durability you can watch.
 *
 * One actor does five steps with a durable sleep between them. Its journal lives in an
 * embedded Postgres (PGlite) directory next to this file, so the run survives the process:
 * press Ctrl-C in the middle, run it again, and it carries on from the step it had reached.
 * Completed steps are not run again; the pid printed by each step shows which run did it.
 * (Ctrl-C stops gracefully. After a hard kill, `kill -9`, the next run resumes too, but only
 * once the dead process's leases and leader lock expire: up to 30 s with the default lease.)
 *
 *   npm run example:hello            # run (again) — continues an unfinished run
 *   npm run example:hello -- --reset # forget the previous run and start over
 */
import { rm } from "node:fs/promises";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Troupe, actor, type ActorContext } from "../../src/index.js";

const DATA_DIR = fileURLToPath(new URL("./.troupe", import.meta.url)); // gitignored
const STEPS = 5;

interface StepRecord {
  step: number;
  pid: number;
  at: string;
}

const hello = actor("hello", async (ctx: ActorContext, input: { name: string }) => {
  const done: StepRecord[] = [];
  for (let i = 1; i <= STEPS; i++) {
    // A step runs once: its result is journaled, and a replay after a restart returns the
    // recorded result without calling the function (so this line is not printed again).
    const rec = await ctx.step(`step ${i}`, () => {
      const r: StepRecord = { step: i, pid: process.pid, at: new Date().toISOString().slice(11, 23) };
      console.log(`  [actor] step ${i}/${STEPS} for ${input.name}: done in pid ${r.pid} at ${r.at}`);
      if (i < STEPS) console.log(`  [actor] sleeping 2s (durable: the actor is parked in the database)`);
      return r;
    });
    done.push(rec);
    if (i < STEPS) await ctx.sleep("2s");
  }
  return { greeting: `hello, ${input.name}!`, steps: done };
});

async function main(): Promise<void> {
  if (process.argv.includes("--reset")) {
    await rm(DATA_DIR, { recursive: true, force: true });
    console.log(`removed ${DATA_DIR}`);
  }

  const troupe = new Troupe({ actors: [hello], database: DATA_DIR });
  let interrupted = false;
  process.once("SIGINT", () => {
    interrupted = true;
    console.log("\nCtrl-C: stopping troupe (the actor's progress is already in the database)…");
    // A second Ctrl-C exits at once.
    process.once("SIGINT", () => process.exit(130));
    troupe.stop().catch((err: unknown) => console.error("stop failed:", err));
  });

  try {
    await run(troupe);
  } catch (err) {
    // After Ctrl-C, calls on the stopped troupe fail (NOT_STARTED): that is expected.
    if (!interrupted) throw err;
  } finally {
    await troupe.stop();
  }
  if (interrupted) console.log("stopped. Run it again to continue where it left off.");
}

async function run(troupe: Troupe): Promise<void> {
  await troupe.start();
  console.log(`database: ${DATA_DIR}`);

  // A fixed id: on a second run, spawn returns the existing actor instead of creating one.
  const before = await troupe.get("hello-1");
  if (!before) {
    console.log('spawning actor "hello-1"');
    console.log("tip: press Ctrl-C in the middle, then run `npm run example:hello` again\n");
  } else if (before.status === "completed") {
    console.log('actor "hello-1" already completed in an earlier run (use --reset to start over)');
  } else {
    console.log(
      `re-attached to actor "hello-1" (status: ${before.status}); completed steps will not run again\n`,
    );
  }
  const ref = await troupe.spawn(hello, { name: "world" }, { id: "hello-1" });

  const out = await ref.result({ timeout: "2m" });
  console.log(`\nresult: ${out.greeting}`);
  for (const s of out.steps) console.log(`  step ${s.step} ran in pid ${s.pid} at ${s.at}`);
  const pids = new Set(out.steps.map((s) => s.pid));
  if (pids.size > 1) console.log(`the work was spread over ${pids.size} runs; each step ran once`);
  console.log(`\nits journal: node dist/cli.js show hello-1 --database ${relative(process.cwd(), DATA_DIR)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
