import type { KvBucket, KvEntry, KvScanOptions } from "./bucket.ts";

const encoder = new TextEncoder();

/**
 * A KvBucket in memory with the semantics of a NATS KV bucket keeping one value per key: revisions grow
 * across the bucket, a rewrite drops the key's previous entry, deletes leave a marker. For unit tests and
 * single-process tools; nothing survives the process.
 */
export class MemoryKvBucket implements KvBucket {
  #revision = 0;
  /** Live entries by revision; a Map iterates in insertion order, which is revision order. */
  readonly #log = new Map<number, KvEntry>();
  readonly #last = new Map<string, KvEntry>();
  readonly #listeners = new Set<(entry: KvEntry) => void>();

  constructor(readonly name = "memory") {}

  async get(key: string): Promise<KvEntry | undefined> {
    const entry = this.#last.get(key);
    return entry?.operation === "PUT" ? entry : undefined;
  }

  async create(key: string, value: Uint8Array | string): Promise<number | undefined> {
    const last = this.#last.get(key);
    if (last !== undefined && last.operation === "PUT") return undefined;
    return this.#write(key, value, "PUT");
  }

  async update(key: string, value: Uint8Array | string, revision: number): Promise<number | undefined> {
    if (this.#last.get(key)?.revision !== revision) return undefined;
    return this.#write(key, value, "PUT");
  }

  async put(key: string, value: Uint8Array | string): Promise<number> {
    return this.#write(key, value, "PUT");
  }

  async delete(key: string): Promise<void> {
    this.#write(key, new Uint8Array(), "DEL");
  }

  async purge(key: string): Promise<void> {
    const last = this.#last.get(key);
    if (last === undefined) return;
    this.#log.delete(last.revision);
    this.#last.delete(key);
  }

  async *history(filter: string, options: KvScanOptions = {}): AsyncIterable<KvEntry> {
    const end = this.#revision;
    for (const entry of this.#matching(filter, options.fromRevision ?? 1)) {
      if (entry.revision > end) return;
      yield entry;
    }
  }

  async *latest(filter: string): AsyncIterable<KvEntry> {
    const tokens = filter.split(".");
    for (const entry of [...this.#last.values()].sort((a, b) => a.revision - b.revision))
      if (entry.operation === "PUT" && matches(tokens, entry.key)) yield entry;
  }

  async *watch(filter: string, options: KvScanOptions & { signal: AbortSignal }): AsyncIterable<KvEntry> {
    const tokens = filter.split(".");
    const queue: KvEntry[] = [];
    let wake: (() => void) | undefined;
    const listener = (entry: KvEntry) => {
      if (!matches(tokens, entry.key)) return;
      queue.push(entry);
      wake?.();
    };
    const abort = () => wake?.();
    this.#listeners.add(listener);
    options.signal.addEventListener("abort", abort, { once: true });
    try {
      let next = options.fromRevision ?? 1;
      for (const entry of this.#matching(filter, next)) {
        if (options.signal.aborted) return;
        yield entry;
        next = entry.revision + 1;
      }
      while (!options.signal.aborted) {
        const entry = queue.shift();
        if (entry === undefined) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        if (entry.revision >= next) yield entry;
      }
    } finally {
      this.#listeners.delete(listener);
      options.signal.removeEventListener("abort", abort);
    }
  }

  async status(): Promise<{ entries: number; bytes: number }> {
    let bytes = 0;
    for (const entry of this.#log.values()) bytes += entry.key.length + entry.value.byteLength;
    return { entries: this.#log.size, bytes };
  }

  async count(filter: string): Promise<number> {
    let n = 0;
    for (const _ of this.#matching(filter, 1)) n++;
    return n;
  }

  *#matching(filter: string, fromRevision: number): Iterable<KvEntry> {
    const tokens = filter.split(".");
    // Copied first: a consumer may write while it iterates, and new entries belong to a watch, not a scan.
    for (const entry of [...this.#log.values()])
      if (entry.revision >= fromRevision && matches(tokens, entry.key)) yield entry;
  }

  #write(key: string, value: Uint8Array | string, operation: KvEntry["operation"]): number {
    const revision = ++this.#revision;
    const entry: KvEntry = {
      key,
      value: typeof value === "string" ? encoder.encode(value) : value,
      revision,
      operation,
    };
    const previous = this.#last.get(key);
    if (previous !== undefined) this.#log.delete(previous.revision);
    this.#log.set(revision, entry);
    this.#last.set(key, entry);
    for (const listener of this.#listeners) listener(entry);
    return revision;
  }
}

/** NATS subject matching of a key against filter tokens: `*` is one token, a final `>` one or more. */
function matches(filter: readonly string[], key: string): boolean {
  const tokens = key.split(".");
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i]!;
    if (f === ">") return tokens.length > i;
    if (i >= tokens.length || (f !== "*" && f !== tokens[i])) return false;
  }
  return tokens.length === filter.length;
}
