// The locks a trigger run takes before its request goes out, and how they pass to the job.
import { type KeepAlive, type Lock, LockLost, Locks } from "../data/mod.ts";
import type { DataStoreSource } from "./buckets.ts";
import { dataStoreUnavailable, openDataStore, releaseAll } from "./job-run.ts";
import { Refusal, refuse } from "./refusal.ts";

// While the gateway itself holds a trigger's locks (waiting for the others, discovering) they last this
// long and are renewed, so that a gateway that dies there frees them this soon.
const HOLD_TTL_MS = 15_000;

export interface LockRequest {
  /** Sorted and without repeats. */
  locks: readonly string[];
  lockTimeoutMs: number;
  /** Shown as the locks' holder: trigger and delivery. */
  holder: string;
}

/** Locks a request holds, each kept alive by this gateway until it is handed to the job or released. */
export class HeldLocks {
  static readonly none = new HeldLocks();

  readonly #keepAlives = new Map<Lock, KeepAlive>();
  #locks: Lock[] = [];

  private constructor() {}

  /**
   * Every lock the request names, or a lock-timeout refusal (and none held) when one cannot be had.
   * Names come sorted, so two runs never each hold what the other waits for.
   */
  static async take(data: DataStoreSource | undefined, request: LockRequest): Promise<HeldLocks> {
    if (request.locks.length === 0) return HeldLocks.none;
    const locks = new Locks(await openDataStore(data));
    const held = new HeldLocks();
    try {
      for (const name of request.locks) {
        const lock = await locks.acquire(name, {
          holder: request.holder,
          ttlMs: HOLD_TTL_MS,
          timeoutMs: request.lockTimeoutMs,
        });
        if (lock === undefined) {
          const state = await locks.inspect(name).catch(() => undefined);
          throw refuse(
            "lock-timeout",
            `lock ${name} is held${state ? ` by ${state.holder} until ${new Date(state.expiresAt).toISOString()} at the latest` : ""}; waited ${request.lockTimeoutMs} ms`,
            { lock: name },
          );
        }
        held.#locks.push(lock);
        held.#keepAlives.set(lock, lock.keepAlive());
      }
      return held;
    } catch (err) {
      await held.release();
      if (err instanceof Refusal) throw err;
      throw dataStoreUnavailable(err);
    }
  }

  get locks(): readonly Lock[] {
    return this.#locks;
  }

  /** The locks, renewed to last the job (its timeout and a grace), just before the job is made. */
  async handOver(ttlMs: number): Promise<void> {
    for (const lock of this.#locks) {
      try {
        this.#keepAlives.get(lock)?.stop();
        await lock.renew({ ttlMs });
      } catch (err) {
        if (!(err instanceof LockLost)) throw dataStoreUnavailable(err);
        throw refuse(
          "lock-timeout",
          `lock ${lock.name} was lost (${err.reason}) before the request went out`,
          {
            lock: lock.name,
          },
        );
      }
    }
  }

  /** The job that was made owns the locks now: the collectors release them when it ends. */
  disown(): void {
    this.#locks = [];
  }

  /** Releases what is still ours (a release stops its renewals too). */
  release(): Promise<void> {
    return releaseAll(this.#locks);
  }
}
