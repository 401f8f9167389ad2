// Key-value buckets for a gateway (async jobs, trigger data and locks), opened over the gateway's own NATS
// connection on the first request that needs one, and again after a failure or on a new connection, so
// that a NATS outage is a 503 for that request rather than a gateway that never recovers. They need a
// connection that outlives requests (sharedConnection): a connection per request would be left open.
import { DataStore, DEFAULT_DATA_BUCKET } from "../data/mod.ts";
import type { LogFn } from "../transport/mod.ts";
import { type KvBucketOptions, NatsBus, NatsKvBucket, reportReplication } from "../transport/mod.ts";
import type { NatsSource } from "./nats.ts";

export interface BucketOnConnection<T> {
  open(): Promise<T>;
}

/** Where the buckets go and how they are made when missing; `log` is told the replication each one got. */
export interface GatewayBucketOptions {
  replicas?: number;
  log?: LogFn;
}

export function bucketOnConnection<T>(
  nats: NatsSource,
  options: KvBucketOptions & { log?: LogFn },
  wrap: (bucket: NatsKvBucket) => T,
): BucketOnConnection<T> {
  const { log, ...bucketOptions } = options;
  const openBucket = async (bus: NatsBus) => {
    const bucket = await NatsKvBucket.open(bus.connection, bucketOptions);
    if (log) await reportReplication(bucket, bucketOptions.replicas ?? 1, log);
    return wrap(bucket);
  };
  let opened: { bus: NatsBus; value: Promise<T> } | undefined;
  return {
    async open() {
      const { bus } = await nats.acquire();
      if (!(bus instanceof NatsBus)) throw new Error(`bucket ${options.name} needs a NATS client connection`);
      // A connection the source replaced (closed, then made anew) takes its bucket handle with it.
      // The bucket is made by whoever comes first; an existing one is used as it is.
      if (opened?.bus !== bus) opened = { bus, value: openBucket(bus) };
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
export function kvDataStore(
  nats: NatsSource,
  options: { bucket?: string } & GatewayBucketOptions = {},
): DataStoreSource {
  const bucket = bucketOnConnection(
    nats,
    { ...bucketSettings(options), name: options.bucket ?? DEFAULT_DATA_BUCKET, ttlMs: 0 },
    (opened) => new DataStore(opened),
  );
  return { store: () => bucket.open() };
}

/** The replicas and log of GatewayBucketOptions, leaving out what is not set. */
export function bucketSettings(options: GatewayBucketOptions): { replicas?: number; log?: LogFn } {
  return {
    ...(options.replicas === undefined ? {} : { replicas: options.replicas }),
    ...(options.log === undefined ? {} : { log: options.log }),
  };
}
