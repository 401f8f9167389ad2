/**
 * Time as the code that waits on it sees it. Locks, the job recorder and the job store take one, so that
 * their tests move time on by hand (ManualClock) instead of sleeping through TTLs and retry delays.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /**
   * Calls `fn` once `ms` have passed, unless the returned function is called first. `unref` lets the
   * process exit while the timer waits, for timers that only tidy up.
   */
  after(ms: number, fn: () => void, options?: { unref?: boolean }): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  after(ms, fn, options) {
    const timer = setTimeout(fn, ms);
    if (options?.unref) timer.unref?.();
    return () => clearTimeout(timer);
  },
};

/** Resolves once `ms` have passed on `clock`; rejects with the signal's reason if it aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const abort = () => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.after(ms, () => {
      signal?.removeEventListener("abort", abort);
      resolve();
    });
    signal?.addEventListener("abort", abort, { once: true });
  });
}
