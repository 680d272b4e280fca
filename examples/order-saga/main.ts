/**
 * order-saga — an order as a saga, payments by competing workers, and cancellation.
 *
 * Each order is a durable actor. It reserves stock for every line (a step whose
 * `compensate` releases it), asks for the payment by publishing a request on the
 * "payments" channel, which three payment-worker actors consume in COMPETING mode (each
 * request goes to exactly one of them), and receives the answer in its own direct mailbox.
 * A captured payment is journaled by a step whose `compensate` refunds it. The order then
 * waits for the courier and ships.
 *
 * Four stories, one after the other:
 *   a) everything works: the order completes;
 *   b) the card is declined: the reservations are released in reverse order, the order fails;
 *   c) the customer cancels while the order waits for the courier: refund, then the
 *      releases, newest first; the order ends `cancelled`;
 *   d) six orders at once: their payment requests spread over the three workers.
 *
 * The data lives in an embedded Postgres (PGlite) directory next to this file. Orders get
 * fresh ids on every run; the payment workers keep theirs (payments-1..3) and are reused
 * by the next run: they wait in the database between runs.
 *
 *   npm run example:order-saga             # run (again)
 *   npm run example:order-saga -- --reset  # start from an empty database
 */
import { rm } from "node:fs/promises";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Troupe, actor, channel, type ActorContext, type TroupeError } from "../../src/index.js";

const DATA_DIR = fileURLToPath(new URL("./.troupe", import.meta.url)); // gitignored

// ---- the outside world: a stock ledger and a card gateway, simulated in memory -------------

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let quiet = false; // during the burst (d) only the payment workers speak
const say = (who: string, text: string) => {
  if (!quiet || who.startsWith("payments-")) console.log(`    ${`[${who}]`.padEnd(13)} ${text}`);
};

/**
 * A plain step's compensation runs again if the process dies before it is marked done, so
 * both "undo" calls are idempotent: keyed by the reservation or charge they undo (a real
 * gateway would also get `info.idempotencyKey`). State kept in troupe's own database can
 * use `ctx.transaction(…, { compensate: (result, tx) => … })` instead: exactly once.
 */
const inventory = {
  stock: new Map<string, number>([
    ["keyboard", 10],
    ["mouse", 10],
  ]),
  reservations: new Map<string, { sku: string; qty: number }>(),
  next: 1,
  reserve(sku: string, qty: number): string {
    const left = this.stock.get(sku) ?? 0;
    if (left < qty) throw new Error(`only ${left} ${sku} left`);
    this.stock.set(sku, left - qty);
    const id = `res-${this.next++}`;
    this.reservations.set(id, { sku, qty });
    say("inventory", `reserved ${qty}× ${sku} (${id}); ${left - qty} left`);
    return id;
  },
  release(id: string): void {
    const r = this.reservations.get(id);
    if (!r) return; // released already
    this.reservations.delete(id);
    this.stock.set(r.sku, (this.stock.get(r.sku) ?? 0) + r.qty);
    say("inventory", `released ${r.qty}× ${r.sku} (${id}); ${this.stock.get(r.sku)} left`);
  },
};

const gateway = {
  charges: new Map<string, { amount: number; refunded: boolean }>(),
  next: 1,
  async charge(
    card: string,
    amount: number,
  ): Promise<{ ok: true; chargeId: string } | { ok: false; reason: string }> {
    await delay(50); // a network call
    if (card.endsWith("0002")) return { ok: false, reason: "card declined" };
    const chargeId = `ch-${this.next++}`;
    this.charges.set(chargeId, { amount, refunded: false });
    return { ok: true, chargeId };
  },
  refund(chargeId: string): void {
    const c = this.charges.get(chargeId);
    if (!c || c.refunded) return; // refunded already
    c.refunded = true;
    say("gateway", `refunded ${euros(c.amount)} (${chargeId})`);
  },
};

const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`;

// ---- channels ---------------------------------------------------------------------------

interface PaymentRequest {
  orderId: string;
  amount: number;
  card: string;
}
type PaymentReply = { ok: true; chargeId: string; by: string } | { ok: false; reason: string; by: string };

/** Competing: every request is taken by exactly one payment worker, oldest first. */
const Payments = channel<PaymentRequest>("payments");
/** Direct: each order reads the answer to its request from its own mailbox. */
const PaymentReplies = channel<PaymentReply>("payment-replies");
/** Direct: the courier service tells an order that its parcel was picked up. */
const Courier = channel<{ courier: string }>("courier");
/** Not durable: progress for whoever listens right now (this script's narrator). */
const OrderEvents = channel<{ orderId: string; event: string }>("order-events", { durable: false });

// ---- actors -----------------------------------------------------------------------------

/**
 * A payment worker: takes one request, charges the card, answers in the order's mailbox,
 * then continues as new (`recur`) so its journal never grows; its subscription, with the
 * requests waiting on it, carries over.
 */
const paymentWorker = actor("payment-worker", async (ctx: ActorContext, input: { handled: number }) => {
  await ctx.subscribe(Payments, "competing"); // re-subscribing keeps the subscription
  const req = await ctx.receive(Payments);
  if (req === null) return input; // no timeout given: never happens
  const { orderId, amount, card } = req.data;
  const result = await ctx.step("charge card", async () => {
    const r = await gateway.charge(card, amount);
    if (r.ok)
      say(ctx.id, `charged ${euros(amount)} to card …${card.slice(-4)} for ${orderId} (${r.chargeId})`);
    else say(ctx.id, `card …${card.slice(-4)} for ${orderId}: ${r.reason}`);
    return r;
  });
  await ctx.send(req.sender ?? orderId, PaymentReplies, { ...result, by: ctx.id });
  return ctx.recur({ handled: input.handled + 1 });
});

interface OrderInput {
  lines: { sku: string; qty: number }[];
  amount: number;
  card: string;
}

const order = actor("order", async (ctx: ActorContext, input: OrderInput) => {
  const event = (e: string) => ctx.publish(OrderEvents, { orderId: ctx.id, event: e });
  await ctx.subscribe(PaymentReplies, "direct");
  await ctx.subscribe(Courier, "direct");

  // 1. Reserve stock, line by line. Each successful step registers its compensation.
  for (const { sku, qty } of input.lines) {
    await ctx.step(`reserve ${sku}`, () => inventory.reserve(sku, qty), {
      compensate: (reservationId: string) => inventory.release(reservationId),
    });
  }

  // 2. Payment, by whichever payment worker is free: a request on the competing channel,
  //    the answer in this actor's own mailbox.
  await ctx.publish(Payments, { orderId: ctx.id, amount: input.amount, card: input.card });
  const reply = await ctx.receive(PaymentReplies, { timeout: "1m" });
  if (reply === null) throw new Error("no answer from the payment workers");
  if (!reply.data.ok) throw new Error(`payment failed: ${reply.data.reason}`); // → compensations
  // The charge happened in the payment worker; this step journals it and registers the refund.
  const chargeId = reply.data.chargeId;
  await ctx.step("payment captured", () => chargeId, {
    compensate: (id: string) => gateway.refund(id),
  });

  // 3. Ship: wait (durably, without holding a worker) for the courier, then hand over.
  await event("awaiting courier");
  const pickup = await ctx.receive(Courier, { timeout: "2d" });
  if (pickup === null) throw new Error("no courier within 2 days");
  const tracking = await ctx.step("ship", () => {
    const t = `TRK-${ctx.id.slice(-6).toUpperCase()}`;
    say("warehouse", `handed the parcel of ${ctx.id} to ${pickup.data.courier}: ${t}`);
    return t;
  });
  return { chargeId, tracking };
});

// ---- the stories ------------------------------------------------------------------------

const LINES = [
  { sku: "keyboard", qty: 2 },
  { sku: "mouse", qty: 1 },
];

async function main(): Promise<void> {
  if (process.argv.includes("--reset")) {
    await rm(DATA_DIR, { recursive: true, force: true });
    console.log(`removed ${DATA_DIR}`);
  }
  const troupe = new Troupe({ actors: [order, paymentWorker], database: DATA_DIR });
  process.once("SIGINT", () => {
    console.log("\nCtrl-C: stopping (everything done so far is in the database)…");
    troupe.stop().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  });
  await troupe.start();
  try {
    await run(troupe);
  } finally {
    await troupe.stop();
  }
}

async function run(troupe: Troupe): Promise<void> {
  const runStarted = new Date();
  const tag = Date.now().toString(36); // fresh order ids on every run
  console.log(`database: ${relative(process.cwd(), DATA_DIR)}`);
  const earlier = Object.values((await troupe.stats({ actor: "order" })).byStatus).reduce((x, y) => x + y, 0);
  if (earlier > 0) console.log(`(${earlier} orders from earlier runs are in it)`);

  // Narration: an in-memory listener on the non-durable progress channel (at most once:
  // what is published while nobody listens is gone).
  const waitingForCourier = new Set<string>();
  troupe.listen(OrderEvents, (m) => {
    say("events", `${m.data.orderId}: ${m.data.event}`);
    if (m.data.event === "awaiting courier") waitingForCourier.add(m.data.orderId);
  });

  // Three payment workers. Spawning an existing id returns that actor: on a second run
  // these are the same workers, still waiting in the database.
  for (const n of [1, 2, 3]) {
    const id = `payments-${n}`;
    const before = await troupe.get(id);
    if (before && before.status !== "waiting" && before.status !== "running") {
      throw new Error(`${id} is ${before.status}; start over with: npm run example:order-saga -- --reset`);
    }
    await troupe.spawn(paymentWorker, { handled: 0 }, { id });
  }
  console.log('payment workers payments-1..3 consume the competing channel "payments"\n');

  const untilAwaitingCourier = async (id: string) => {
    const deadline = Date.now() + 30_000;
    while (!(waitingForCourier.has(id) && (await troupe.get(id))?.status === "waiting")) {
      if (Date.now() > deadline) throw new Error(`${id} never started waiting for the courier`);
      await delay(25);
    }
  };

  // a) Everything works.
  const a = `order-a-${tag}`;
  console.log(`a) ${a}: 2 keyboards and a mouse, a good card`);
  const refA = await troupe.spawn(
    order,
    { lines: LINES, amount: 12900, card: "4242-4242-4242-4242" },
    { id: a },
  );
  await untilAwaitingCourier(a);
  say("courier", `picks up the parcel of ${a}`);
  await refA.send(Courier, { courier: "Swift Couriers" });
  const outA = await refA.result({ timeout: "1m" });
  console.log(`   → ${(await troupe.get(a))?.status}: charge ${outA.chargeId}, tracking ${outA.tracking}\n`);

  // b) The card is declined: the reservations are released, newest first.
  const b = `order-b-${tag}`;
  console.log(`b) ${b}: the same basket, a card that will be declined`);
  const refB = await troupe.spawn(
    order,
    { lines: LINES, amount: 12900, card: "4000-0000-0000-0002" },
    { id: b },
  );
  const errB = await refB.result({ timeout: "1m" }).then(
    () => null,
    (e: TroupeError & { error?: { message: string } }) => e,
  );
  console.log(`   → ${(await troupe.get(b))?.status} (${errB?.code}): ${errB?.error?.message}\n`);

  // c) The customer cancels while the order waits for the courier.
  const c = `order-c-${tag}`;
  console.log(`c) ${c}: paid, waiting for the courier, then the customer cancels`);
  const refC = await troupe.spawn(
    order,
    { lines: LINES, amount: 12900, card: "5555-5555-5555-4444" },
    { id: c },
  );
  await untilAwaitingCourier(c);
  say("customer", `cancels ${c}`);
  await refC.cancel("customer changed their mind");
  const errC = await refC.result({ timeout: "1m" }).then(
    () => null,
    (e: TroupeError) => e,
  );
  console.log(`   → ${(await troupe.get(c))?.status} (${errC?.code}): ${errC?.message}`);
  const journal: string[] = [];
  for await (const e of troupe.history(c)) journal.push(`${e.kind} ${e.name}`.trim());
  console.log(`   its journal: ${journal.join(" · ")}`);
  console.log("   (compensations are not journal entries: each is marked done in the compensations table)\n");

  // d) A burst: the requests spread over the competing workers, each taken exactly once.
  console.log("d) six orders at once (one mouse each); only the payment workers speak");
  quiet = true;
  const burst = await Promise.all(
    [1, 2, 3, 4, 5, 6].map(async (n) => {
      const ref = await troupe.spawn(
        order,
        { lines: [{ sku: "mouse", qty: 1 }], amount: 2500, card: "4242-4242-4242-4242" },
        { id: `order-d${n}-${tag}` },
      );
      await ref.send(Courier, { courier: "Swift Couriers" }); // a mailbox keeps it until the order reads it
      return ref;
    }),
  );
  const byWorker = new Map<string, number>();
  for (const ref of burst) {
    await ref.result({ timeout: "1m" });
    for await (const e of troupe.history(ref.id)) {
      if (e.kind === "receive" && e.name === PaymentReplies.name) {
        const by = (e.result as { data: PaymentReply }).data.by;
        byWorker.set(by, (byWorker.get(by) ?? 0) + 1);
      }
    }
  }
  quiet = false;
  console.log(`   → 6 completed; payments by ${[...byWorker].map(([w, n]) => `${w}: ${n}`).join(", ")}\n`);

  // Summary.
  const s = await troupe.stats({ actor: "order", since: runStarted });
  console.log(
    `orders this run: ${s.byStatus.completed} completed, ${s.byStatus.failed} failed, ${s.byStatus.cancelled} cancelled`,
  );
  for (const n of [1, 2, 3]) {
    const w = await troupe.get(`payments-${n}`);
    const handled = (w?.input as { handled: number } | undefined)?.handled ?? 0;
    console.log(
      `payments-${n}: ${handled} payment(s) handled so far, now ${w?.status} (generation ${w?.generation})`,
    );
  }
  console.log(`stock left: ${[...inventory.stock].map(([sku, n]) => `${n} ${sku}`).join(", ")}`);
  console.log(
    `\ninspect an order: node dist/cli.js show ${c} --database ${relative(process.cwd(), DATA_DIR)}` +
      " (after this process exits)",
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
