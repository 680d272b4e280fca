import { checkTime, optionsArg } from "../arguments.js";
import { decode } from "../codec.js";
import { NotFoundError, ValidationError } from "../api/errors.js";
import { checkName } from "../names.js";
import { actorInfo, type ActorInfo } from "../ref.js";
import type { ListFilter } from "../storage/list-query.js";
import type { HistoryEntry, TroupeStats } from "../api/types.js";
import type { ClientDeps } from "./troupe-deps.js";

/** Reading actors, their journals, counts and groups (Troupe's read methods). */
export class Queries {
  constructor(private readonly c: ClientDeps) {}

  /** See Troupe.get. */
  async get(id: string): Promise<ActorInfo | null> {
    checkName(id, "actor id", 255);
    const row = await this.c.storage("get").actors.get(id);
    if (!row) return null;
    const info = actorInfo(row);
    const compensations = await this.c.storage("get").sagas.records(id, row.generation);
    if (compensations.length > 0) info.compensations = compensations;
    return info;
  }

  /** See Troupe.list. */
  async list(filter?: ListFilter): Promise<{ items: ActorInfo[]; nextCursor?: string }> {
    const storage = this.c.storage("list");
    const { rows, nextCursor } = await storage.actors.list(optionsArg(filter, "list filter"));
    return nextCursor ? { items: rows.map(actorInfo), nextCursor } : { items: rows.map(actorInfo) };
  }

  /** See Troupe.history. */
  async *history(id: string, options?: { pageSize?: number }): AsyncIterable<HistoryEntry> {
    checkName(id, "actor id", 255);
    const opts = optionsArg(options, "history options");
    const pageSize = opts.pageSize === undefined ? 500 : opts.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 10_000)
      throw new ValidationError("pageSize must be an integer from 1 to 10000");
    const storage = this.c.storage("history");
    if (!(await storage.actors.get(id))) throw new NotFoundError(`no actor with id "${id}"`);
    let after = { generation: -1, seq: -1 };
    for (;;) {
      const page = await storage.journal.historyPage(id, after, pageSize);
      for (const e of page) {
        const entry: HistoryEntry = {
          generation: e.generation ?? 0,
          seq: e.seq,
          kind: e.kind,
          name: e.name,
          at: e.createdAt ?? new Date(0),
        };
        if (e.error) entry.error = e.error;
        else if (e.result) entry.result = decode(e.result);
        yield entry;
      }
      const last = page.at(-1);
      if (!last || page.length < pageSize) return;
      after = { generation: last.generation ?? 0, seq: last.seq };
    }
  }

  /** See Troupe.stats. */
  async stats(options?: { actor?: string; since?: Date }): Promise<TroupeStats> {
    const storage = this.c.storage("stats");
    const filter = optionsArg(options, "stats filter");
    if (filter.actor !== undefined) checkName(filter.actor, "actor name");
    if (filter.since !== undefined) checkTime(filter.since, "since");
    const scope = { actor: filter.actor ?? null, since: filter.since ?? null };
    const byStatus = await storage.stats.countByStatus(scope);
    const done = await storage.stats.completions(scope);
    return {
      byStatus,
      durationMs: { p50: done.p50Ms, p95: done.p95Ms },
      completed: done.count,
      throughputPerSec: done.spanSec > 0 ? done.count / done.spanSec : null,
    };
  }

  /** See Troupe.members. */
  async members(group: string): Promise<string[]> {
    checkName(group, "group name");
    return this.c.storage("members").groups.members(group);
  }

  /** See Troupe.groups. */
  async groups(): Promise<{ group: string; members: number }[]> {
    return this.c.storage("groups").groups.groups();
  }
}
