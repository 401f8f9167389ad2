// The replay store's KvPort on NATS JetStream KV. `create` is the atomic claim: JetStream refuses it
// with "wrong last sequence" (10071) when the key holds a value, however many gateways race for it.
import { JetStreamApiCodes, JetStreamApiError, jetstream, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { KvPort } from "../security/http/replay.ts";

// Newer servers report a sequence check on an unknown subject with its own code; both mean "taken".
const KEY_TAKEN: readonly number[] = [
  JetStreamApiCodes.StreamWrongLastSequence,
  JetStreamApiCodes.StreamWrongLastSequenceUnknown,
];
/** A stream by that name exists with other settings: use the bucket as it was made. */
const STREAM_NAME_IN_USE = 10058;

export interface ReplayBucketOptions {
  /** Bucket name; default "choria_edge_replay". */
  name?: string;
  /**
   * How long the server keeps every claim (the bucket's max_age). nats-server 2.9 has no per-message
   * TTL, so this is the one expiry; make it `replayWindowSeconds(...)` of the gateway's settings.
   */
  windowSeconds: number;
  replicas?: number;
}

/** Opens (creating if needed) the replay bucket. An existing bucket is used with its own settings. */
export async function openReplayBucket(
  connection: NatsConnection,
  options: ReplayBucketOptions,
): Promise<KvPort> {
  const kvm = new Kvm(jetstream(connection));
  const name = options.name ?? "choria_edge_replay";
  let kv: KV;
  try {
    kv = await kvm.create(name, {
      history: 1,
      ttl: options.windowSeconds * 1000,
      replicas: options.replicas ?? 1,
      storage: StorageType.File,
    });
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
    kv = await kvm.open(name);
  }
  return natsKvPort(kv);
}

export function natsKvPort(kv: KV): KvPort {
  return {
    create: (key, value) => unlessWrongSequence(kv.create(key, value)),
    async get(key) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== "PUT") return undefined;
      return { value: entry.value, revision: entry.revision };
    },
    update: (key, value, revision) => unlessWrongSequence(kv.update(key, value, revision)),
  };
}

async function unlessWrongSequence(write: Promise<number>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && KEY_TAKEN.includes(err.code)) return false;
    throw err;
  }
}
