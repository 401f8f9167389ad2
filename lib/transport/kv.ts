// The replay store's bucket on NATS JetStream KV, the same bucket code as jobs and trigger data.
// `create` is the atomic claim: JetStream refuses it when the key holds a value, however many gateways
// race for it.
import type { NatsConnection } from "@nats-io/nats-core";
import type { KvBucket } from "../kv/mod.ts";
import type { LogFn } from "./auth.ts";
import { NatsKvBucket, reportReplication } from "./kv-bucket.ts";

export interface ReplayBucketOptions {
  /** Bucket name; default "choria_edge_replay". */
  name?: string;
  /**
   * How long the server keeps every claim (the bucket's max_age). nats-server 2.9 has no per-message
   * TTL, so this is the one expiry; make it `replayWindowSeconds(...)` of the gateway's settings.
   */
  windowSeconds: number;
  replicas?: number;
  /** Told the replication the bucket got once it is open. */
  log?: LogFn;
}

/** Opens (creating if needed) the replay bucket. An existing bucket is used with its own settings. */
export async function openReplayBucket(
  connection: NatsConnection,
  options: ReplayBucketOptions,
): Promise<KvBucket> {
  const bucket = await NatsKvBucket.open(connection, {
    name: options.name ?? "choria_edge_replay",
    ttlMs: options.windowSeconds * 1000,
    ...(options.replicas === undefined ? {} : { replicas: options.replicas }),
  });
  if (options.log) await reportReplication(bucket, options.replicas ?? 1, options.log);
  return bucket;
}
