// What a gateway is built from. Each runtime entry (node.ts, lambda.ts, cloudflare.ts) makes these its
// own way and hands them to createGateway.
import type { ReplyDigest } from "../client/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { AuditEvent, KeyRegistry, ReplayStore, SyncVerifier } from "../security/http/mod.ts";
import type { RequestSigner } from "../security/mod.ts";
import type { DataStoreSource } from "./buckets.ts";
import type { GatewayConfig } from "./config.ts";
import type { JobStoreSource } from "./job-store.ts";
import type { GatewayMetrics } from "./metrics.ts";
import type { NatsSource } from "./nats.ts";
import type { GatewayTriggers } from "./triggers.ts";

/** Static files by path (`/docs` and what it loads), as the runtime entry that has them hands them over. */
export type DocsAssets = Record<string, { type: string; body: string }>;

/** Who may call, and how their requests are checked (lib/security/http). */
export interface GatewayAuth {
  keys: KeyRegistry;
  /** Shared by every instance that must refuse each other's replays. */
  replay: ReplayStore;
  /** Tolerated clock difference, both ways (default 30 s). */
  maxSkewSeconds?: number;
  /** How long after `created` a signature is accepted (default 300 s). */
  maxAgeSeconds?: number;
  /** Checks signatures on the calling thread (Node's verifySync); WebCrypto by default. */
  verify?: SyncVerifier;
}

interface CoreDeps {
  config: GatewayConfig;
  /** The gateway's own Choria certificate and key; privileged, so it may sign for any caller id. */
  signer: RequestSigner;
  nats: NatsSource;
  auth: GatewayAuth;
  /** One call per decision; `auditLine` turns it into the JSON line. */
  audit?: (event: AuditEvent) => void;
  /** The interactive reference; without it /docs answers a problem that points at /v1/openapi.json. */
  docs?: DocsAssets;
  /** Requests by route, status and reason, with their latency; none by default (Workers, Lambda). */
  metrics?: GatewayMetrics;
  /** Where failures of the gateway itself are told; callers only ever see a generic 500. */
  log?: Logger;
  now?: () => number;
  /** Trigger data and locks (kvDataStore); needed by triggers that take locks or read data. */
  data?: DataStoreSource;
  /** Checks reply hashes at once (Node: lib/client/node.ts); through openReply's promise by default. */
  replyDigest?: ReplyDigest;
}

/**
 * Async requests and /v1/jobs need `jobs`; without it async requests are refused as async-unavailable.
 * Webhook triggers (`POST /v1/hooks/<name>`, loadTriggers) run as jobs, so a gateway has them only with jobs.
 */
export type AsyncDeps =
  | { jobs?: undefined; triggers?: undefined }
  | { jobs: JobStoreSource; triggers?: GatewayTriggers | undefined };

export type GatewayDeps = CoreDeps & AsyncDeps;
