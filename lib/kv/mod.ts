// The public surface of lib/kv: import from here, not from the files behind it.
export type { KvBucket, KvEntry, KvScanOptions } from "./bucket.ts";
export { MemoryKvBucket } from "./memory.ts";
