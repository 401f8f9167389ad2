import { KvUnavailable } from "../kv/mod.ts";

/**
 * Keeps callers of a store that stopped answering from each waiting out their own timeout. Once a call
 * finds the store unavailable, one call at a time goes through to find out whether it answers again, and
 * the others are refused at once with the failure that started it; the first success ends
 * that. During a stream's leader election (seconds) a caller hears 503 in milliseconds instead of after
 * the client's 5 s request timeout. Only a success counts as an answer: a failure of another kind may
 * never have reached the store.
 */
export class OutageGate {
  #down: KvUnavailable | undefined;
  #probing = false;
  // Successes so far: a call that was already out before the last one says nothing about now.
  #successes = 0;

  constructor(private readonly store: string) {}

  /** The call's result; `unavailable` tells which of its failures mean the store cannot answer now. */
  async run<T>(call: () => Promise<T>, unavailable: (err: unknown) => unknown): Promise<T> {
    const down = this.#down;
    if (down !== undefined && this.#probing)
      throw new KvUnavailable(`${this.store} did not answer a moment ago (${down.message})`, { cause: down });
    const probe = down !== undefined;
    if (probe) this.#probing = true;
    const successesBefore = this.#successes;
    try {
      const result = await call();
      this.#successes++;
      this.#down = undefined;
      return result;
    } catch (err) {
      const failure = unavailable(err);
      if (failure instanceof KvUnavailable && this.#successes === successesBefore) this.#down = failure;
      throw failure;
    } finally {
      if (probe) this.#probing = false;
    }
  }
}
