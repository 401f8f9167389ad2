// The gateway's callers, from the keys document (JSON: `{ "keys": [...] }`, see lib/security/http/keys.ts).

import {
  KEY_SCHEMES,
  KeyRegistry,
  KvReplayStore,
  MemoryReplayStore,
  type ReplayStore,
  replayWindowSeconds,
  type SyncVerifier,
} from "../security/http/mod.ts";
import { NatsBus, openReplayBucket } from "../transport/mod.ts";
import { bucketSettings, type GatewayBucketOptions } from "./buckets.ts";
import type { GatewayAuth } from "./deps.ts";
import type { NatsSource } from "./nats.ts";

export interface GatewayAuthOptions {
  /** Default: a memory store, right for one process (Node, one Lambda container, one Durable Object). */
  replay?: ReplayStore;
  maxSkewSeconds?: number;
  maxAgeSeconds?: number;
  verify?: SyncVerifier;
}

/** Parses and imports every key once, at start-up; throws naming each bad entry (KeyConfigError). */
export async function gatewayAuthFromKeys(
  keysJson: string,
  options: GatewayAuthOptions = {},
): Promise<GatewayAuth> {
  let document: unknown;
  try {
    document = JSON.parse(keysJson);
  } catch (err) {
    throw new Error(`gateway keys: not JSON: ${(err as Error).message}`);
  }
  return {
    keys: await KeyRegistry.fromConfig(document),
    replay: options.replay ?? new MemoryReplayStore(),
    ...(options.maxSkewSeconds === undefined ? {} : { maxSkewSeconds: options.maxSkewSeconds }),
    ...(options.maxAgeSeconds === undefined ? {} : { maxAgeSeconds: options.maxAgeSeconds }),
    ...(options.verify === undefined ? {} : { verify: options.verify }),
  };
}

/**
 * The WWW-Authenticate value of a 401 (RFC 9110 §11.6.1): one challenge per scheme the gateway's keys
 * use. RFC 9421 signatures are `Signature` with the accepted algorithms by their registry names (the key
 * schemes are those names); bearer tokens are `Bearer` (RFC 6750). A gateway without keys names every
 * scheme it could take.
 */
export function authChallenge(keys: KeyRegistry): string {
  const used = new Set(keys.all().map((key) => key.scheme));
  const schemes = used.size === 0 ? new Set(KEY_SCHEMES) : used;
  const algorithms = KEY_SCHEMES.filter((scheme) => scheme !== "bearer" && schemes.has(scheme));
  const challenges: string[] = [];
  if (algorithms.length > 0) challenges.push(`Signature realm="choria-edge", algs="${algorithms.join(" ")}"`);
  if (schemes.has("bearer")) challenges.push('Bearer realm="choria-edge"');
  return challenges.join(", ");
}

/**
 * Replay claims in JetStream KV on the gateway's own NATS connection, so that every instance behind a
 * load balancer (or every Lambda container) refuses a request another one already took. The bucket is
 * opened on the first claim and opened again after a failure, so a NATS outage is a 503, not a wedge.
 */
export function kvReplayStore(
  nats: NatsSource,
  options: { maxAgeSeconds?: number; maxSkewSeconds?: number } & GatewayBucketOptions = {},
): ReplayStore {
  const windowSeconds = replayWindowSeconds(options);
  let store: Promise<ReplayStore> | undefined;
  const open = async (): Promise<ReplayStore> => {
    const { bus } = await nats.acquire();
    if (!(bus instanceof NatsBus)) throw new Error("the KV replay store needs a NATS client connection");
    const bucket = await openReplayBucket(bus.connection, { ...bucketSettings(options), windowSeconds });
    return new KvReplayStore(bucket, { windowSeconds });
  };
  return {
    async claim(key, ttlSeconds) {
      store ??= open();
      try {
        return await (await store).claim(key, ttlSeconds);
      } catch (err) {
        store = undefined;
        throw err;
      }
    },
  };
}
