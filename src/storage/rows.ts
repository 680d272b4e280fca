import type { RecordedError } from "../api/errors.js";
import type { ActorStatus } from "../api/types.js";

// Public types live in src/api/types.ts; re-exported for the storage, engine and CLI modules that import them here.
export type { ActorStatus, CompensationOutcome, CompensationRecord } from "../api/types.js";
export const ACTIVE_STATUSES: readonly ActorStatus[] = ["running", "waiting", "compensating"];
export const FINISHED_STATUSES: readonly ActorStatus[] = ["completed", "failed", "cancelled"];

/** One actor instance as stored. */
export interface ActorRow {
  id: string;
  actor: string;
  status: ActorStatus;
  input: Buffer;
  output: Buffer | null;
  error: RecordedError | null;
  uniqueKey: string | null;
  context: Record<string, unknown> | null;
  generation: number;
  journalVersion: number;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  leaseVersion: number;
  /** The worker its execution is parked on while it waits (column sticky_worker). */
  parkedOn: string | null;
  waitSeq: number | null;
  waitKind: string | null;
  waitName: string | null;
  waitUntil: Date | null;
  cancelRequestedAt: Date | null;
  cancelReason: string | null;
  startedAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

/** Proof that this worker holds an actor's lease: every write on the actor's behalf carries it. */
export interface Fence {
  actorId: string;
  leaseVersion: number;
  worker: string;
}

/** One journaled operation. */
export interface JournalEntry {
  seq: number;
  kind: string;
  name: string;
  result: Buffer | null;
  error: RecordedError | null;
  createdAt?: Date;
  generation?: number;
}

function toBuffer(v: unknown): Buffer | null {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v;
  const u = v as Uint8Array;
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function toDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v : new Date(v as string);
}

export function actorFromRow(r: Record<string, any>): ActorRow {
  return {
    id: r.id,
    actor: r.actor,
    status: r.status,
    input: toBuffer(r.input)!,
    output: toBuffer(r.output),
    error: r.error ?? null,
    uniqueKey: r.unique_key ?? null,
    context: r.context ?? null,
    generation: Number(r.generation),
    journalVersion: Number(r.journal_version),
    leaseOwner: r.lease_owner ?? null,
    leaseExpiresAt: toDate(r.lease_expires_at),
    leaseVersion: Number(r.lease_version),
    parkedOn: r.sticky_worker ?? null, // the column keeps its first name (migrations are append-only)
    waitSeq: r.wait_seq === null || r.wait_seq === undefined ? null : Number(r.wait_seq),
    waitKind: r.wait_kind ?? null,
    waitName: r.wait_name ?? null,
    waitUntil: toDate(r.wait_until),
    cancelRequestedAt: toDate(r.cancel_requested_at),
    cancelReason: r.cancel_reason ?? null,
    startedAt: toDate(r.started_at)!,
    updatedAt: toDate(r.updated_at)!,
    finishedAt: toDate(r.finished_at),
  };
}

export function journalFromRow(r: Record<string, any>): JournalEntry {
  const e: JournalEntry = {
    seq: Number(r.seq),
    kind: r.kind,
    name: r.name,
    result: toBuffer(r.result),
    error: r.error ?? null,
  };
  if (r.created_at !== undefined) e.createdAt = toDate(r.created_at)!;
  if (r.generation !== undefined) e.generation = Number(r.generation);
  return e;
}

/** Journal entries travel to SQL as one JSON parameter (bytes as base64): one round trip for any count, same on pg and PGlite. */
export function entriesParam(entries: readonly JournalEntry[]): string {
  return JSON.stringify(
    entries.map((e) => ({
      seq: e.seq,
      kind: e.kind,
      name: e.name,
      result: e.result ? e.result.toString("base64") : null,
      error: e.error,
    })),
  );
}

/** SQL fragment turning that parameter back into rows. */
export const ENTRIES_RECORDSET = (param: string) =>
  `jsonb_to_recordset(${param}::jsonb) AS e(seq integer, kind text, name text, result text, error jsonb)`;
