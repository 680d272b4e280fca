import type { Execution } from "../execution/execution.js";

/**
 * The executions parked at a wait on this worker, kept in memory so that the wakeup that
 * completes the wait resumes them without replaying their journal. A bounded LRU (by
 * insertion order): the oldest is dropped past `max`, and is replayed when it wakes.
 */
export class ParkedExecutions {
  private readonly lru = new Map<string, Execution>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.lru.size;
  }

  has(id: string): boolean {
    return this.lru.has(id);
  }

  add(exec: Execution): void {
    this.lru.delete(exec.id);
    this.lru.set(exec.id, exec);
    while (this.lru.size > this.max) {
      const oldest = this.lru.keys().next().value as string;
      this.lru.delete(oldest);
    }
  }

  /** Removes and returns the actor's parked execution, if kept. */
  take(id: string): Execution | undefined {
    const exec = this.lru.get(id);
    this.lru.delete(id);
    return exec;
  }

  delete(id: string): void {
    this.lru.delete(id);
  }

  clear(): void {
    this.lru.clear();
  }
}
