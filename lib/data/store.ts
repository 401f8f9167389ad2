import type { KvBucket } from "../kv/mod.ts";
import { MemoryKvBucket } from "../kv/mod.ts";
import { dataKey } from "./keys.ts";

/** 64 KiB: room for a document or a list of hosts, far below the default 1 MiB max_payload of nats-server. */
export const DEFAULT_MAX_VALUE_BYTES = 64 * 1024;

/** The bucket gateways (trigger inputs, locks) and collectors (a run's end) share by default. */
export const DEFAULT_DATA_BUCKET = "choria_edge_data";

export interface DataStoreOptions {
  /** The largest value `put` and `compareAndSet` accept, in UTF-8 bytes. */
  maxValueBytes?: number;
}

export interface DataEntry {
  value: string;
  /** The bucket-wide revision of the write that stored this value; the token for `compareAndSet`. */
  revision: number;
}

export type CompareAndSetResult =
  | { ok: true; revision: number }
  /** `current` is the key's revision now, undefined when the key does not exist. */
  | { ok: false; current?: number };

/** A value over the store's size limit; nothing was written. */
export class ValueTooLarge extends Error {
  override readonly name = "ValueTooLarge";

  constructor(
    readonly key: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`value of ${key} is ${bytes} bytes, more than the limit of ${limit}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * String values under validated keys in a key-value bucket (layout and key rules in keys.ts). Every write
 * is one KV operation, so several gateways may share the bucket; `compareAndSet` is the way to change a
 * value that others may change too. Values last as long as the bucket keeps them (its max_age).
 */
export class DataStore {
  readonly maxValueBytes: number;

  constructor(
    /** The bucket itself, shared with the locks of this store. */
    readonly bucket: KvBucket,
    options: DataStoreOptions = {},
  ) {
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  }

  /** A store in process memory, for tests and single-process tools; nothing survives the process. */
  static inMemory(options: DataStoreOptions = {}): DataStore {
    return new DataStore(new MemoryKvBucket("data"), options);
  }

  async get(key: string): Promise<DataEntry | undefined> {
    const entry = await this.bucket.get(dataKey(key));
    return entry && { value: decoder.decode(entry.value), revision: entry.revision };
  }

  /** Writes whatever is there; the new revision. */
  async put(key: string, value: string): Promise<number> {
    return await this.bucket.put(dataKey(key), this.#encoded(key, value));
  }

  async delete(key: string): Promise<void> {
    await this.bucket.delete(dataKey(key));
  }

  /**
   * Writes only when the key is still at `expectedRevision`, or, with `undefined`, only when the key does
   * not exist (never written, deleted or expired).
   */
  async compareAndSet(
    key: string,
    value: string,
    expectedRevision: number | undefined,
  ): Promise<CompareAndSetResult> {
    const kvKey = dataKey(key);
    const bytes = this.#encoded(key, value);
    const revision =
      expectedRevision === undefined
        ? await this.bucket.create(kvKey, bytes)
        : await this.bucket.update(kvKey, bytes, expectedRevision);
    if (revision !== undefined) return { ok: true, revision };
    const current = await this.bucket.get(kvKey);
    return current === undefined ? { ok: false } : { ok: false, current: current.revision };
  }

  #encoded(key: string, value: string): Uint8Array {
    const bytes = encoder.encode(value);
    if (bytes.byteLength > this.maxValueBytes)
      throw new ValueTooLarge(key, bytes.byteLength, this.maxValueBytes);
    return bytes;
  }
}
