import type { JournalStore } from "../storage/journal-store.js";
import type { JournalEntry } from "../storage/rows.js";

const PAGE = 500;

/**
 * Reads an actor's journal lazily, a page at a time, as replay advances; entries are
 * dropped once consumed so memory stays flat however long the journal is.
 */
export class JournalReader {
  private readonly cache = new Map<number, JournalEntry>();
  private loadedUntil = 0; // every entry with seq < loadedUntil is in cache (or consumed)
  private exhausted: boolean;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly store: JournalStore,
    private readonly actorId: string,
    journalVersion: number,
  ) {
    this.exhausted = journalVersion === 0;
  }

  /** The entry at `seq`, or null if the journal has none (the op runs live). Consumes it. */
  async take(seq: number): Promise<JournalEntry | null> {
    while (!this.exhausted && seq >= this.loadedUntil) {
      this.loading ??= this.loadPage().finally(() => (this.loading = undefined));
      await this.loading;
    }
    const e = this.cache.get(seq) ?? null;
    if (e) this.cache.delete(seq);
    return e;
  }

  /** True once every journaled entry has been loaded and consumed: the execution is live from here. */
  get caughtUp(): boolean {
    return this.exhausted && this.cache.size === 0;
  }

  private async loadPage(): Promise<void> {
    const page = await this.store.page(this.actorId, this.loadedUntil, PAGE);
    for (const e of page) this.cache.set(e.seq, e);
    const last = page.at(-1);
    if (page.length < PAGE || !last) this.exhausted = true;
    this.loadedUntil = last ? last.seq + 1 : this.loadedUntil;
    if (this.exhausted) this.loadedUntil = Number.MAX_SAFE_INTEGER;
  }
}
