export { InvalidKey, MAX_KEY_LENGTH } from "./keys.ts";
export {
  type AcquireOptions,
  type KeepAlive,
  type KeepAliveOptions,
  type Lock,
  LockLost,
  type LockLostReason,
  type LockState,
  Locks,
  type LocksOptions,
  releaseLock,
} from "./locks.ts";
export {
  type CompareAndSetResult,
  type DataEntry,
  DataStore,
  type DataStoreOptions,
  DEFAULT_DATA_BUCKET,
  DEFAULT_MAX_VALUE_BYTES,
  ValueTooLarge,
} from "./store.ts";
