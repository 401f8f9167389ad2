// The async jobs' store for a gateway: the collectors' KV bucket, opened over the gateway's own NATS
// connection on the first request that needs it, and again after a failure or on a new connection, so
// that a NATS outage is a 503 for that request rather than a gateway that never recovers. It needs a
// connection that outlives requests (sharedConnection): a connection per request would be left open.
import { DEFAULT_BUCKET } from "../../lib/results/jobs/keys.ts";
import { JobStore } from "../../lib/results/jobs/store.ts";
import { NatsBus } from "../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../lib/transport/kv-bucket.ts";
import type { NatsSource } from "./nats.ts";

export interface JobStoreSource {
  store(): Promise<JobStore>;
}

/** Seven days, the collector's default retention. */
export const DEFAULT_JOB_RETENTION_MS = 7 * 86_400_000;

export function kvJobStore(
  nats: NatsSource,
  options: { bucket?: string; retentionMs?: number } = {},
): JobStoreSource {
  let opened: { bus: NatsBus; store: Promise<JobStore> } | undefined;
  const open = async (bus: NatsBus): Promise<JobStore> => {
    // The bucket is made by whichever of gateway and collector comes first; an existing one is used as is.
    const bucket = await NatsKvBucket.open(bus.connection, {
      name: options.bucket ?? DEFAULT_BUCKET,
      ttlMs: options.retentionMs ?? DEFAULT_JOB_RETENTION_MS,
    });
    return new JobStore(bucket);
  };
  return {
    async store() {
      const { bus } = await nats.acquire();
      if (!(bus instanceof NatsBus)) throw new Error("async jobs need a NATS client connection");
      // A connection the source replaced (closed, then made anew) takes its bucket handle with it.
      if (opened?.bus !== bus) opened = { bus, store: open(bus) };
      const current = opened;
      try {
        return await current.store;
      } catch (err) {
        if (opened === current) opened = undefined;
        throw err;
      }
    },
  };
}
