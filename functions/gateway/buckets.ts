// Key-value buckets for a gateway (async jobs, trigger data and locks), opened over the gateway's own NATS
// connection on the first request that needs one, and again after a failure or on a new connection, so
// that a NATS outage is a 503 for that request rather than a gateway that never recovers. They need a
// connection that outlives requests (sharedConnection): a connection per request would be left open.
import { DataStore, DEFAULT_DATA_BUCKET } from "../../lib/data/mod.ts";
import { NatsBus } from "../../lib/transport/bus.ts";
import { type KvBucketOptions, NatsKvBucket } from "../../lib/transport/kv-bucket.ts";
import type { NatsSource } from "./nats.ts";

export interface BucketOnConnection<T> {
  open(): Promise<T>;
}

export function bucketOnConnection<T>(
  nats: NatsSource,
  options: KvBucketOptions,
  wrap: (bucket: NatsKvBucket) => T,
): BucketOnConnection<T> {
  let opened: { bus: NatsBus; value: Promise<T> } | undefined;
  return {
    async open() {
      const { bus } = await nats.acquire();
      if (!(bus instanceof NatsBus)) throw new Error(`bucket ${options.name} needs a NATS client connection`);
      // A connection the source replaced (closed, then made anew) takes its bucket handle with it.
      // The bucket is made by whoever comes first; an existing one is used as it is.
      if (opened?.bus !== bus) opened = { bus, value: NatsKvBucket.open(bus.connection, options).then(wrap) };
      const current = opened;
      try {
        return await current.value;
      } catch (err) {
        if (opened === current) opened = undefined;
        throw err;
      }
    },
  };
}

export interface DataStoreSource {
  store(): Promise<DataStore>;
}

/** Trigger data and locks; values are kept until deleted (the bucket has no max age). */
export function kvDataStore(nats: NatsSource, options: { bucket?: string } = {}): DataStoreSource {
  const bucket = bucketOnConnection(
    nats,
    { name: options.bucket ?? DEFAULT_DATA_BUCKET, ttlMs: 0 },
    (opened) => new DataStore(opened),
  );
  return { store: () => bucket.open() };
}
