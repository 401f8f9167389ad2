// The async jobs' store for a gateway: the collectors' KV bucket on the gateway's NATS connection.
import { DEFAULT_BUCKET, JobStore } from "../results/jobs/mod.ts";
import { bucketOnConnection, bucketSettings, type GatewayBucketOptions } from "./buckets.ts";
import type { NatsSource } from "./nats.ts";

export interface JobStoreSource {
  store(): Promise<JobStore>;
}

/** Seven days, the collector's default retention. */
export const DEFAULT_JOB_RETENTION_MS = 7 * 86_400_000;

export function kvJobStore(
  nats: NatsSource,
  options: { bucket?: string; retentionMs?: number } & GatewayBucketOptions = {},
): JobStoreSource {
  const bucket = bucketOnConnection(
    nats,
    {
      ...bucketSettings(options),
      name: options.bucket ?? DEFAULT_BUCKET,
      ttlMs: options.retentionMs ?? DEFAULT_JOB_RETENTION_MS,
    },
    (opened) => new JobStore(opened),
  );
  return { store: () => bucket.open() };
}
