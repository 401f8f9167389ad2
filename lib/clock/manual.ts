import type { Clock } from "./clock.ts";

interface Pending {
  at: number;
  order: number;
  fn: () => void;
}

/** Lets promise chains and immediates started by a timer run to their next wait on real I/O or a timer. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that stands still until `advance` moves it, firing the timers that fall due in order and letting
 * the work each one starts settle before the next: tests of timed behaviour run in no real time, and the
 * same way on every run.
 */
export class ManualClock implements Clock {
  #now: number;
  #order = 0;
  readonly #pending = new Set<Pending>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.#now + Math.max(0, ms), order: this.#order++, fn };
    this.#pending.add(timer);
    return () => this.#pending.delete(timer);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Moves the clock `ms` on, firing every timer due by then, including ones those timers set. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#next();
      if (next === undefined || next.at > until) break;
      this.#pending.delete(next);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await settle();
    }
    this.#now = until;
    await settle();
  }

  #next(): Pending | undefined {
    let first: Pending | undefined;
    for (const timer of this.#pending)
      if (first === undefined || timer.at < first.at || (timer.at === first.at && timer.order < first.order))
        first = timer;
    return first;
  }
}
