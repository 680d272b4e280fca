/**
 * The seeded plan of one chaos round, shared by the runner, the checker, the client
 * process and the workload actors (an actor recomputes its own part from its input, so it
 * is replay-safe). Everything a round does — who is spawned, what is sent by whom, which
 * sagas fail, are cancelled or complete, which faults happen when — follows from the seed.
 */
import { prng } from "../test/support/prng.js";

export { prng };

export const int = (rnd: () => number, lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

// Channels and groups of the workload.
export const NEWS = "chaos-news"; // broadcast
export const JOBS = "chaos-jobs"; // competing
export const INBOX = "chaos-inbox"; // direct (each mailbox actor's own)
export const NEVER = "chaos-never"; // direct: what a saga waits on until it is cancelled
export const READY = "chaos-ready"; // every consumer joins once subscribed
export const MAILBOXES = "chaos-mailboxes"; // the mailbox actors: target of group broadcasts
export const CHURN = "chaos-churn"; // joined and left over and over
export const SAGA_WAITING = "chaos-saga-waiting"; // a saga to be cancelled joins it before its last wait

/** What a message is for: broadcast, competing, direct to one mailbox, group broadcast. */
export type Kind = "b" | "c" | "d" | "g";

/** One planned message: its kind and (direct) the mailbox index. */
export interface Send {
  kind: Kind;
  box: number;
  /** ms to pause before it (spreads traffic over the fault window). */
  pauseMs: number;
}

/** The payload every workload message carries: its source and position there. */
export interface Payload {
  src: string;
  n: number;
}

export type SagaEnd = "fail" | "cancel" | "complete";

export interface SagaPlan {
  id: string;
  /** Each step plain ("p") or transactional ("t"). */
  steps: ("p" | "t")[];
  end: SagaEnd;
  /** For end "cancel": cancelled at its last wait, or early (mid-flight, between steps). */
  cancelAt: "wait" | "early";
}

export interface RoundPlan {
  seed: number;
  round: number;
  subscribers: number;
  consumers: number;
  mailboxes: number;
  /** A consumer continues-as-new after this many messages. */
  recurEvery: number;
  /** Publisher actors and their sends (inside actors: ctx.publish/send/broadcast). */
  publishers: Send[][];
  /** The client's sends (outside actors: troupe.publish/send/broadcast, with idempotency keys). */
  client: Send[];
  sagas: SagaPlan[];
  /** Churner actors: how many join/leave cycles each. */
  churners: number[];
  /** Counter actors: how many times each recurs. */
  counters: number[];
}

export interface PlanSize {
  short: boolean;
}

const pad = (i: number) => String(i).padStart(2, "0");
export const subscriberId = (i: number) => `sub-${pad(i)}`;
export const consumerId = (i: number) => `con-${pad(i)}`;
export const mailboxId = (i: number) => `box-${pad(i)}`;
export const publisherId = (i: number) => `pub-${i}`;
export const churnerId = (i: number) => `churn-${i}`;
export const counterId = (i: number) => `count-${i}`;
export const CLIENT = "client";

function sends(rnd: () => number, count: number, mailboxes: number, spanMs: number): Send[] {
  const out: Send[] = [];
  const meanPause = spanMs / Math.max(1, count);
  for (let i = 0; i < count; i++) {
    const r = rnd();
    const kind: Kind = r < 0.2 ? "b" : r < 0.5 ? "c" : r < 0.9 ? "d" : "g";
    out.push({ kind, box: int(rnd, 0, mailboxes - 1), pauseMs: Math.floor(rnd() * 2 * meanPause) });
  }
  return out;
}

/** How long a round's traffic lasts: the window the faults fall in. */
export const trafficWindowMs = (short: boolean) => (short ? 9000 : 13_000);

/** The round's plan: everything a round does, from the seed and the round number. */
export function roundPlan(seed: number, round: number, size: PlanSize): RoundPlan {
  const rnd = prng((seed ^ Math.imul(round + 1, 0x9e3779b1)) >>> 0);
  const short = size.short;
  const trafficMs = trafficWindowMs(short);
  const mailboxes = int(rnd, 4, 6);
  const perPublisher = short ? int(rnd, 25, 40) : int(rnd, 40, 65);
  const publishers = Array.from({ length: 3 }, () => sends(rnd, perPublisher, mailboxes, trafficMs));
  const client = sends(rnd, short ? int(rnd, 60, 90) : int(rnd, 100, 150), mailboxes, trafficMs);
  // Every ending at least once, a cancel at the last wait and one mid-flight; then at random.
  const ends: SagaEnd[] = ["fail", "cancel", "complete", "cancel"];
  const firstCancel: SagaPlan["cancelAt"] = rnd() < 0.5 ? "wait" : "early";
  const sagas = Array.from({ length: short ? 5 : 7 }, (_, i): SagaPlan => ({
    id: `saga-${i}`,
    steps: Array.from({ length: int(rnd, 3, 6) }, () => (rnd() < 0.5 ? "p" : "t")),
    end: i < ends.length ? ends[i]! : ends[int(rnd, 0, 2)]!,
    cancelAt:
      i === 1
        ? firstCancel
        : i === 3
          ? firstCancel === "wait"
            ? "early"
            : "wait"
          : rnd() < 0.5
            ? "wait"
            : "early",
  }));
  return {
    seed,
    round,
    subscribers: int(rnd, 3, 4),
    consumers: int(rnd, 3, 4),
    mailboxes,
    recurEvery: int(rnd, 6, 15),
    publishers,
    client,
    sagas,
    churners: Array.from({ length: 3 }, () => int(rnd, 3, 6)),
    counters: Array.from({ length: 2 }, () => int(rnd, 3, 8)),
  };
}

/** Deliveries the consumers must record for a source's sends. */
export function expectedDeliveries(plan: RoundPlan): number {
  let n = 0;
  for (const s of [...plan.publishers.flat(), ...plan.client]) {
    if (s.kind === "b") n += plan.subscribers;
    else if (s.kind === "g") n += plan.mailboxes;
    else n += 1;
  }
  return n;
}
