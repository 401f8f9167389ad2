// The public surface of lib/kv: import from here, not from the files behind it.
export { type KvBucket, type KvEntry, type KvScanOptions, KvUnavailable } from "./bucket.ts";
export { MemoryKvBucket } from "./memory.ts";
