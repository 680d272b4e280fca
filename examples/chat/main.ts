/**
 * chat — a room as a process group.
 *
 * Each user is a durable actor. Joining the room is `ctx.join("room:lobby")`; a line said
 * in the room is `ctx.broadcast(room, Chat, …)`: one direct message into the "chat"
 * mailbox of every current member. Private messages are `ctx.send(userId, Chat, …)`.
 * Presence is the group's membership (`troupe.members(room)`), which shrinks when a user
 * leaves (`ctx.leave`) or finishes. What a user "types" arrives on a second direct channel,
 * sent from outside with `troupe.send`; each user waits on both with `ctx.receiveAny`.
 *
 * Runs a scripted conversation on embedded, in-memory Postgres and exits.
 */
import { Troupe, actor, channel, type ActorContext, type ActorRef } from "../../src/index.js";

type ChatLine = { kind: "say" | "dm" | "joined" | "left"; text?: string };
type Keystroke = { cmd: "say"; text: string } | { cmd: "dm"; to: string; text: string } | { cmd: "leave" };

const Chat = channel<ChatLine>("chat"); // every user's inbox (direct)
const Keyboard = channel<Keystroke>("keyboard"); // what the scripted user types (direct)

// What the users displayed, so the script can wait for each line to land before the next.
let displayed = 0;
function show(user: string, line: string): void {
  displayed++;
  console.log(`  ${user.padEnd(5)}| ${line}`);
}

type Outcome = { user: string; received: number; reason: "idle" | "left" };

const member = actor(
  "chat-member",
  async (ctx: ActorContext, input: { user: string; room: string }): Promise<Outcome> => {
    const room = `room:${input.room}`;
    await ctx.subscribe(Chat, "direct");
    await ctx.subscribe(Keyboard, "direct");
    await ctx.broadcast(room, Chat, { kind: "joined" }); // tell those already here…
    await ctx.join(room); // …then become a member (presence)
    let received = 0;

    for (;;) {
      const msg = await ctx.receiveAny([Chat, Keyboard], { timeout: "1m" });
      if (msg === null) return { user: input.user, received, reason: "idle" };

      if (msg.channel === Keyboard.name) {
        const key = msg.data as Keystroke;
        if (key.cmd === "say") await ctx.broadcast(room, Chat, { kind: "say", text: key.text });
        if (key.cmd === "dm") await ctx.send(key.to, Chat, { kind: "dm", text: key.text });
        if (key.cmd === "leave") {
          await ctx.broadcast(room, Chat, { kind: "left" });
          await ctx.leave(room);
          return { user: input.user, received, reason: "left" };
        }
        continue;
      }

      const line = msg.data as ChatLine;
      const from = msg.sender ?? "(notice)"; // the sending actor's id; none when sent from outside
      if (from === input.user) continue; // a room broadcast reaches its sender too
      received++;
      // Displaying is a side effect: a step, so a replay would not print it twice.
      await ctx.step("show", () => {
        if (line.kind === "joined") show(input.user, `* ${from} joined ${room}`);
        if (line.kind === "left") show(input.user, `* ${from} left ${room}`);
        if (line.kind === "say") show(input.user, `${from}: ${line.text}`);
        if (line.kind === "dm") show(input.user, `(private) ${from}: ${line.text}`);
      });
    }
  },
);

async function until(lines: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (displayed < lines) {
    if (Date.now() > deadline) throw new Error(`only ${displayed} of ${lines} lines arrived`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function main(): Promise<void> {
  const troupe = new Troupe({ actors: [member], database: "memory://" });
  await troupe.start();
  const room = "room:lobby";
  let expected = 0;

  /** One scripted action, then wait until the `seenBy` users it should reach have shown it. */
  async function act(label: string, run: () => Promise<unknown>, seenBy: number): Promise<void> {
    console.log(label);
    await run();
    expected += seenBy;
    await until(expected);
  }
  const type = (user: string, key: Keystroke) => troupe.send(user, Keyboard, key);
  const presence = async () =>
    console.log(`  presence in ${room}: [${(await troupe.members(room)).join(", ")}]`);

  console.log(`users below show what they see; "> …" is what happens\n`);
  const refs = new Map<string, ActorRef<Outcome>>();
  const users = ["ana", "bob", "cleo"];
  for (const [i, user] of users.entries()) {
    await act(
      `> ${user} enters the lobby`,
      async () => {
        refs.set(user, await troupe.spawn(member, { user, room: "lobby" }, { id: user }));
        while (!(await troupe.members(room)).includes(user)) await new Promise((r) => setTimeout(r, 5));
      },
      i, // everyone already there sees the join
    );
  }
  await presence();

  await act(`> ana says "hi all"`, () => type("ana", { cmd: "say", text: "hi all" }), 2);
  await act(`> bob says "hey ana!"`, () => type("bob", { cmd: "say", text: "hey ana!" }), 2);
  await act(
    `> cleo whispers to bob`,
    () => type("cleo", { cmd: "dm", to: "bob", text: "lunch after this?" }),
    1,
  );
  await act(`> bob whispers back`, () => type("bob", { cmd: "dm", to: "cleo", text: "sure, 12:30" }), 1);
  await act(`> ana leaves`, () => type("ana", { cmd: "leave" }), 2);
  console.log(`  ana's actor returned ${JSON.stringify(await refs.get("ana")!.result({ timeout: "30s" }))}`);
  await presence();
  await act(
    `> bob says "bye ana" (ana is gone: only cleo gets it)`,
    () => type("bob", { cmd: "say", text: "bye ana" }),
    1,
  );
  await act(
    `> a notice from outside, to every member: troupe.broadcast(room, …)`,
    async () => {
      const { count } = await troupe.broadcast(room, Chat, {
        kind: "say",
        text: "the lobby closes in 5 minutes",
      });
      console.log(`  (delivered to ${count} members)`);
    },
    2,
  );

  await act(`> bob leaves`, () => type("bob", { cmd: "leave" }), 1);
  await act(`> cleo leaves`, () => type("cleo", { cmd: "leave" }), 0);
  for (const user of ["bob", "cleo"]) {
    console.log(
      `  ${user}'s actor returned ${JSON.stringify(await refs.get(user)!.result({ timeout: "30s" }))}`,
    );
  }
  await presence();
  console.log(`  groups with members: ${JSON.stringify(await troupe.groups())}`);
  await troupe.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
