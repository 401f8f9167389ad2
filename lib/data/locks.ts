import { type Clock, realClock, sleep } from "../clock/mod.ts";
import type { KvBucket } from "../kv/mod.ts";
import { lockKey } from "./keys.ts";
import type { DataStore } from "./store.ts";

/**
 * The value of `lock.<name>`. nats-server 2.9 has no per-key TTL, so the expiry lives here and every
 * contender compares it with its own clock. A released lock keeps its record with `released_at` set: the
 * bucket can only delete unconditionally, so a release is a compare-and-set to this tombstone, which
 * cannot remove a lock that someone else took in the meantime.
 */
interface LockRecord {
  holder: string;
  token: string;
  /** Epoch milliseconds by the clock of the holder's last write. */
  expires_at: number;
  acquired_at: number;
  renewals: number;
  released_at?: number;
}

export interface LocksOptions {
  /** The wall clock that expiries are written and compared with, and that waits and renewals are timed by. */
  clock?: Clock;
}

export interface AcquireOptions {
  /** Who holds the lock, for status output (e.g. `gateway-2/job 3f9c`). */
  holder: string;
  /** How long the lock lasts without a renewal. */
  ttlMs: number;
  /** How long to keep trying while someone else holds it; 0 tries once. */
  timeoutMs: number;
  /** Stops waiting: acquire then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What `inspect` tells about a lock that is not released; there is no token, which would release it. */
export interface LockState {
  name: string;
  holder: string;
  acquiredAt: number;
  expiresAt: number;
  renewals: number;
  /** Past its expiry by this store's clock: the next acquire takes it over. */
  expired: boolean;
  revision: number;
}

/**
 * - `taken`: someone else holds it now (it had expired and was taken over).
 * - `released`: it was released with its token, e.g. by `releaseLock` in another process.
 * - `gone`: the key is missing, removed by the bucket's max_age or by hand.
 * - `expired`: keepAlive could not renew it before its expiry (the server was out of reach).
 */
export type LockLostReason = "taken" | "released" | "gone" | "expired";

/** The lock is no longer ours: stop the work it protects. */
export class LockLost extends Error {
  override readonly name = "LockLost";

  constructor(
    readonly lock: string,
    readonly reason: LockLostReason,
    options?: { cause?: unknown },
  ) {
    super(`lock ${lock} lost: ${reason}`, options);
  }
}

export interface KeepAliveOptions {
  /** Time between renewals; a third of the TTL by default, so two renewals can fail before expiry. */
  everyMs?: number;
  onLost?: (error: LockLost) => void;
  /** Stops the renewals (not the lock) when it aborts. */
  signal?: AbortSignal;
}

export interface KeepAlive {
  /** Aborts with the LockLost as its reason when the lock is lost. */
  readonly lost: AbortSignal;
  /** Stops renewing; the lock then lasts until its current expiry. */
  stop(): void;
}

export interface Lock {
  readonly name: string;
  readonly holder: string;
  /** Enough to release the lock from anywhere (`releaseLock`), so keep it where only its owners see it. */
  readonly token: string;
  readonly ttlMs: number;
  readonly acquiredAt: number;
  readonly expiresAt: number;
  readonly renewals: number;
  /** The revision of our last write, which the next renewal or release compares with. */
  readonly revision: number;
  /**
   * Pushes the expiry to now + ttl (or `ttlMs`, for once: a holder handing the lock to longer work);
   * rejects with LockLost when the lock is no longer ours.
   */
  renew(options?: { ttlMs?: number }): Promise<void>;
  /** True when this released the lock; false when it was no longer ours. Stops keepAlive. */
  release(): Promise<boolean>;
  /** Renews in the background until stopped, released or lost; one at a time per lock (a new one stops
   * the previous). Throws RangeError unless 0 < everyMs < ttlMs. */
  keepAlive(options?: KeepAliveOptions): KeepAlive;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Contenders poll with this backoff; the cap bounds how late a waiter notices a release.
const FIRST_RETRY_MS = 10;
const MAX_RETRY_MS = 200;
// A renewal that failed to reach the server is retried this soon (or at the renewal interval if shorter).
const RETRY_AFTER_ERROR_MS = 100;
// Compare-and-set attempts of one renewal or release; only writers with our token can make one fail.
const MAX_OWN_WRITES = 8;

/** Locks with an expiry, in the bucket of a DataStore; any number of processes may share the bucket. */
export class Locks {
  readonly #bucket: KvBucket;
  readonly #clock: Clock;

  constructor(store: DataStore, options: LocksOptions = {}) {
    this.#bucket = store.bucket;
    this.#clock = options.clock ?? realClock;
  }

  /**
   * Takes the lock, waiting up to `timeoutMs` while someone else holds it; undefined when the time is up.
   * A missing key is taken with create; a released or expired lock is taken with a compare-and-set on its
   * revision, so of several contenders exactly one wins.
   */
  async acquire(name: string, options: AcquireOptions): Promise<Lock | undefined> {
    const key = lockKey(name);
    if (!(options.ttlMs > 0)) throw new RangeError(`lock ttlMs must be positive, not ${options.ttlMs}`);
    if (!(options.timeoutMs >= 0))
      throw new RangeError(`lock timeoutMs must be >= 0, not ${options.timeoutMs}`);
    if (options.holder === "") throw new RangeError("lock holder must not be empty");
    const token = crypto.randomUUID();
    const deadline = this.#clock.now() + options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      const outcome = await this.#tryTake(key, options.holder, token, options.ttlMs);
      if ("record" in outcome)
        return new HeldLock(
          name,
          key,
          options.ttlMs,
          this.#bucket,
          this.#clock,
          outcome.record,
          outcome.revision,
        );
      const remaining = deadline - this.#clock.now();
      if (remaining <= 0) return undefined;
      const backoff = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(this.#clock, Math.max(1, Math.min(remaining, backoff, outcome.freeInMs)), options.signal);
    }
  }

  /** The lock's holder and expiry, or undefined when nobody has it (never taken, released, or gone). */
  async inspect(name: string): Promise<LockState | undefined> {
    const entry = await this.#bucket.get(lockKey(name));
    const record = entry && decodeLock(entry.value);
    if (entry === undefined || record === undefined || record.released_at !== undefined) return undefined;
    return {
      name,
      holder: record.holder,
      acquiredAt: record.acquired_at,
      expiresAt: record.expires_at,
      renewals: record.renewals,
      expired: record.expires_at <= this.#clock.now(),
      revision: entry.revision,
    };
  }

  async #tryTake(
    key: string,
    holder: string,
    token: string,
    ttlMs: number,
  ): Promise<{ record: LockRecord; revision: number } | { freeInMs: number }> {
    const entry = await this.#bucket.get(key);
    const current = entry && decodeLock(entry.value);
    const now = this.#clock.now();
    if (current !== undefined && current.released_at === undefined && current.expires_at > now)
      return { freeInMs: current.expires_at - now };
    const record: LockRecord = { holder, token, expires_at: now + ttlMs, acquired_at: now, renewals: 0 };
    const revision =
      entry === undefined
        ? await this.#bucket.create(key, encodeLock(record))
        : await this.#bucket.update(key, encodeLock(record), entry.revision);
    return revision === undefined ? { freeInMs: Number.POSITIVE_INFINITY } : { record, revision };
  }
}

/**
 * Releases a lock by its name and token, e.g. in the process that ends a job whose lock another process
 * took. True when this released it; false when the token no longer holds it (released, taken over, gone).
 */
export async function releaseLock(
  store: DataStore,
  name: string,
  token: string,
  options: LocksOptions = {},
): Promise<boolean> {
  const clock = options.clock ?? realClock;
  const outcome = await rewriteOwn(store.bucket, lockKey(name), token, undefined, (record) => ({
    ...record,
    released_at: clock.now(),
  }));
  return typeof outcome !== "string";
}

class HeldLock implements Lock {
  #record: LockRecord;
  #revision: number;
  #lost: LockLost | undefined;
  #keepAlive: { stop(): void } | undefined;

  constructor(
    readonly name: string,
    private readonly key: string,
    readonly ttlMs: number,
    private readonly bucket: KvBucket,
    private readonly clock: Clock,
    record: LockRecord,
    revision: number,
  ) {
    this.#record = record;
    this.#revision = revision;
  }

  get holder(): string {
    return this.#record.holder;
  }
  get token(): string {
    return this.#record.token;
  }
  get acquiredAt(): number {
    return this.#record.acquired_at;
  }
  get expiresAt(): number {
    return this.#record.expires_at;
  }
  get renewals(): number {
    return this.#record.renewals;
  }
  get revision(): number {
    return this.#revision;
  }

  async renew(options: { ttlMs?: number } = {}): Promise<void> {
    if (this.#lost) throw this.#lost;
    const ttlMs = options.ttlMs ?? this.ttlMs;
    const outcome = await rewriteOwn(
      this.bucket,
      this.key,
      this.token,
      { record: this.#record, revision: this.#revision },
      (record) => ({ ...record, expires_at: this.clock.now() + ttlMs, renewals: record.renewals + 1 }),
    );
    // keepAlive may have given the lock up while this write was on its way.
    if (this.#lost) throw this.#lost;
    if (typeof outcome === "string") throw this.#lose(new LockLost(this.name, outcome));
    this.#record = outcome.record;
    this.#revision = outcome.revision;
  }

  async release(): Promise<boolean> {
    this.#keepAlive?.stop();
    if (this.#lost) return false;
    const outcome = await rewriteOwn(
      this.bucket,
      this.key,
      this.token,
      { record: this.#record, revision: this.#revision },
      (record) => ({ ...record, released_at: this.clock.now() }),
    );
    this.#lose(new LockLost(this.name, typeof outcome === "string" ? outcome : "released"));
    return typeof outcome !== "string";
  }

  keepAlive(options: KeepAliveOptions = {}): KeepAlive {
    const everyMs = options.everyMs ?? Math.max(1, Math.floor(this.ttlMs / 3));
    if (!(everyMs > 0 && everyMs < this.ttlMs))
      throw new RangeError(`keepAlive everyMs must be between 0 and the TTL (${this.ttlMs}), not ${everyMs}`);
    this.#keepAlive?.stop();
    const lost = new AbortController();
    let cancelRenewal = () => {};
    let cancelExpiry = () => {};
    let stopped = false;
    const stop = () => {
      stopped = true;
      cancelRenewal();
      cancelExpiry();
      options.signal?.removeEventListener("abort", stop);
      if (this.#keepAlive === handle) this.#keepAlive = undefined;
    };
    const handle = { stop };
    const lose = (error: LockLost) => {
      if (stopped) return;
      stop();
      lost.abort(error);
      options.onLost?.(error);
    };
    const watchExpiry = () => {
      cancelExpiry();
      cancelExpiry = this.clock.after(Math.max(0, this.expiresAt - this.clock.now()), () => {
        if (stopped) return;
        // Node's timers may fire a millisecond early by Date.now.
        if (this.clock.now() < this.expiresAt) return watchExpiry();
        lose(this.#lose(new LockLost(this.name, "expired")));
        // Let the next contender in now rather than at the expiry of a renewal still on its way.
        void rewriteOwn(this.bucket, this.key, this.token, undefined, (record) => ({
          ...record,
          released_at: this.clock.now(),
        })).catch(() => {});
      });
    };
    const renewSoon = (delayMs: number) => {
      cancelRenewal = this.clock.after(delayMs, async () => {
        if (stopped) return;
        try {
          await this.renew();
          if (stopped) return;
          watchExpiry();
          renewSoon(everyMs);
        } catch (err) {
          if (stopped) return;
          if (err instanceof LockLost) lose(err);
          // The write did not reach the server: try again; the expiry watch ends it if that lasts.
          else renewSoon(Math.min(everyMs, RETRY_AFTER_ERROR_MS));
        }
      });
    };
    this.#keepAlive = handle;
    if (options.signal?.aborted) stop();
    else {
      options.signal?.addEventListener("abort", stop, { once: true });
      watchExpiry();
      renewSoon(everyMs);
    }
    return { lost: lost.signal, stop };
  }

  #lose(error: LockLost): LockLost {
    this.#lost ??= error;
    return this.#lost;
  }
}

/**
 * Writes `change(record)` over the lock while its record carries `token` and is not released, by
 * compare-and-set from `known` (or from a fresh read). A CAS that fails is checked again from a read: a
 * renewal whose answer was lost on the way may have been stored, and the entry is then still ours. The
 * reason the lock is not ours otherwise.
 */
async function rewriteOwn(
  bucket: KvBucket,
  key: string,
  token: string,
  known: { record: LockRecord; revision: number } | undefined,
  change: (record: LockRecord) => LockRecord,
): Promise<{ record: LockRecord; revision: number } | LockLostReason> {
  let current = known;
  for (let attempt = 0; attempt < MAX_OWN_WRITES; attempt++) {
    if (current === undefined) {
      const entry = await bucket.get(key);
      if (entry === undefined) return "gone";
      const record = decodeLock(entry.value);
      if (record === undefined || record.token !== token) return "taken";
      if (record.released_at !== undefined) return "released";
      current = { record, revision: entry.revision };
    }
    const record = change(current.record);
    const revision = await bucket.update(key, encodeLock(record), current.revision);
    if (revision !== undefined) return { record, revision };
    current = undefined;
  }
  throw new Error(`lock ${key} kept changing under its own token`);
}

function encodeLock(record: LockRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

/** The record, or undefined for a value that is not one (which any contender may then overwrite). */
function decodeLock(bytes: Uint8Array): LockRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (
    typeof r.holder !== "string" ||
    typeof r.token !== "string" ||
    typeof r.expires_at !== "number" ||
    typeof r.acquired_at !== "number" ||
    typeof r.renewals !== "number" ||
    (r.released_at !== undefined && typeof r.released_at !== "number")
  )
    return undefined;
  return {
    holder: r.holder,
    token: r.token,
    expires_at: r.expires_at,
    acquired_at: r.acquired_at,
    renewals: r.renewals,
    ...(r.released_at === undefined ? {} : { released_at: r.released_at }),
  };
}
