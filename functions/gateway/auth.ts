// The gateway's callers, from the keys document (JSON: `{ "keys": [...] }`, see lib/security/http/keys.ts).

import { KeyRegistry, MemoryReplayStore, type ReplayStore } from "../../lib/security/http/mod.ts";
import type { GatewayAuth } from "../gateway.ts";

export interface GatewayAuthOptions {
  /** Default: a memory store, right for one process (Node, one Lambda container, one Durable Object). */
  replay?: ReplayStore;
  maxSkewSeconds?: number;
  maxAgeSeconds?: number;
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
  };
}
