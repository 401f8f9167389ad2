// The one key-value abstraction of the project: NATS JetStream KV (lib/transport) and memory (./memory.ts)
// implement it; jobs, trigger data, locks and replay claims are written against it.
/** One stored value of a key-value bucket. Deleted keys appear as `DEL` (or `PURGE`) entries in scans. */
export interface KvEntry {
  key: string;
  value: Uint8Array;
  /** The bucket-wide sequence of this write: it only grows, so it orders every write in the bucket. */
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
}

export interface KvScanOptions {
  /** The first revision to include; the start of the bucket by default. */
  fromRevision?: number;
}

/**
 * The operations the async result store needs from a key-value bucket with compare-and-set, in the
 * semantics of NATS JetStream KV with one value kept per key. Keys are dotted like NATS subjects, and the
 * filters of the scans take NATS wildcards (`*` one token, `>` the rest).
 */
export interface KvBucket {
  readonly name: string;
  /** The current value, or undefined when the key was never written or is deleted. */
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes only when the key does not exist (or is deleted); the new revision, or undefined when it exists. */
  create(key: string, value: Uint8Array | string): Promise<number | undefined>;
  /** Writes only when the key is still at `revision`; the new revision, or undefined when it moved on. */
  update(key: string, value: Uint8Array | string, revision: number): Promise<number | undefined>;
  put(key: string, value: Uint8Array | string): Promise<number>;
  /** Writes a delete marker: scans and watches see the key go. */
  delete(key: string): Promise<void>;
  /** Removes the key with its history and leaves no marker, so that scans never meet it again. */
  purge(key: string): Promise<void>;
  /** The stored entries of matching keys in revision order, up to the end of the bucket; deletes included. */
  history(filter: string, options?: KvScanOptions): AsyncIterable<KvEntry>;
  /** The last entry of each matching key, deleted keys left out. */
  latest(filter: string): AsyncIterable<KvEntry>;
  /** Like `history`, then every new entry as it is stored, until `signal` aborts. */
  watch(filter: string, options: KvScanOptions & { signal: AbortSignal }): AsyncIterable<KvEntry>;
  /** What the bucket holds now: live and deleted entries, and the bytes they take in the store. */
  status(): Promise<{ entries: number; bytes: number }>;
  /**
   * How many stored entries (deletes included) match the filter now, counted by the store without
   * reading them. Optional: without it callers read what they need to count.
   */
  count?(filter: string): Promise<number>;
}

/**
 * The bucket cannot answer just now: no connection to the store, or (in a cluster) the bucket's stream
 * has no leader while the survivors of a server's death elect one. The same call may work seconds later,
 * so callers answer "try again" rather than fail.
 */
export class KvUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KvUnavailable";
  }
}
