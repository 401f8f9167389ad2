// Replay protection: a signed request may be accepted once. The store remembers what it has seen for as
// long as the request could still pass the freshness check, and claiming must be atomic across every
// gateway instance that shares the store, or two instances could each accept the same request once.
import type { KvBucket } from "../../kv/mod.ts";
import { utf8Bytes } from "../mod.ts";
import { digestBytes } from "./digest.ts";
import { toHex } from "./keys.ts";

export interface ReplayStore {
  /**
   * Records `key` for `ttlSeconds`; true when this is the first claim inside that time. Rejects (never
   * answers true) when the store cannot tell, so that authentication fails closed.
   */
  claim(key: string, ttlSeconds: number): Promise<boolean>;
}

/** The store is full of live claims; accepting more would mean forgetting one that still matters. */
export class ReplayStoreFull extends Error {
  override readonly name = "ReplayStoreFull";
}

/**
 * Claims held in this process: right for one gateway process (Node, a single Lambda container, tests).
 * Bounded: when full of unexpired claims it rejects new ones instead of evicting live ones, because an
 * evicted claim could be replayed. Claims are only made for verified signatures, so filling it takes
 * that many genuinely signed requests within the window.
 */
export class MemoryReplayStore implements ReplayStore {
  // Insertion order is roughly expiry order (TTLs are close to the freshness window), so the sweep from
  // the front stops early; a full scan only runs when the store is at its bound.
  readonly #expiries = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { maxEntries?: number; now?: () => number } = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#expiries.size;
  }

  async claim(key: string, ttlSeconds: number): Promise<boolean> {
    const now = this.#now();
    this.#sweepFront(now);
    const expiry = this.#expiries.get(key);
    if (expiry !== undefined && expiry > now) return false;
    this.#expiries.delete(key);
    if (this.#expiries.size >= this.#maxEntries) {
      this.#sweepAll(now);
      if (this.#expiries.size >= this.#maxEntries)
        throw new ReplayStoreFull(`replay store holds ${this.#maxEntries} live claims`);
    }
    this.#expiries.set(key, now + ttlSeconds * 1000);
    return true;
  }

  #sweepFront(now: number): void {
    for (const [key, expiry] of this.#expiries) {
      if (expiry > now) return;
      this.#expiries.delete(key);
    }
  }

  #sweepAll(now: number): void {
    for (const [key, expiry] of this.#expiries) if (expiry <= now) this.#expiries.delete(key);
  }
}

/**
 * What the shared replay store needs of a key-value bucket: an atomic create (the claim), and a read plus
 * compare-and-set to take over a claim that has expired but is still stored.
 */
export type ReplayBucket = Pick<KvBucket, "create" | "get" | "update">;

/**
 * Claims in a shared key-value bucket (NATS JetStream KV, see lib/transport/kv.ts), for several gateway
 * instances. The bucket's own expiry (max_age) must be at least `windowSeconds`; each value also carries
 * its claim's expiry, so a claim shorter than the bucket's age can be taken over once it lapses.
 */
export class KvReplayStore implements ReplayStore {
  readonly #now: () => number;

  constructor(
    private readonly kv: ReplayBucket,
    private readonly options: { windowSeconds: number; prefix?: string; now?: () => number },
  ) {
    this.#now = options.now ?? Date.now;
  }

  async claim(key: string, ttlSeconds: number): Promise<boolean> {
    // A claim that outlived the bucket's max_age would vanish early and let a replay through.
    if (ttlSeconds > this.options.windowSeconds)
      throw new RangeError(
        `a claim of ${ttlSeconds}s is longer than the bucket's ${this.options.windowSeconds}s`,
      );
    // Hashing keeps any nonce within the bucket's key alphabet and length.
    const kvKey = `${this.options.prefix ?? "replay"}.${toHex(await digestBytes("sha-256", utf8Bytes(key)))}`;
    const now = this.#now();
    const value = utf8Bytes(String(now + ttlSeconds * 1000));
    if ((await this.kv.create(kvKey, value)) !== undefined) return true;
    const existing = await this.kv.get(kvKey);
    // Gone between create and get: the bucket expired it, so a fresh create decides.
    if (existing === undefined) return (await this.kv.create(kvKey, value)) !== undefined;
    const expiry = Number(new TextDecoder().decode(existing.value));
    if (Number.isFinite(expiry) && expiry > now) return false;
    return (await this.kv.update(kvKey, value, existing.revision)) !== undefined;
  }
}
