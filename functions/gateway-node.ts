// The gateway as both Node runtimes build it from their settings (the `choria-edge gateway` server and
// the Lambda entry): the signer, one NATS connection over TCP shared by every request, the keys with their
// replay store, and the KV-backed parts.

import { replyDigest } from "../lib/client/node.ts";
import {
  asyncParts,
  createGateway,
  type GatewayApp,
  type GatewayAuth,
  type GatewayMetrics,
  gatewayAuthFromKeys,
  kvReplayStore,
  type NatsSource,
  sharedConnection,
} from "../lib/gateway/mod.ts";
import type { Logger } from "../lib/log/mod.ts";
import type { AuditEvent, ReplayStore } from "../lib/security/http/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import { parseTriggerJson } from "../lib/triggers/mod.ts";
import { type AuditSink, auditSink } from "./audit-sink.ts";
import { docsAssets } from "./gateway-docs.ts";
import type { NodeGatewaySettings } from "./gateway-env.ts";
import { loadNodeSigner, verifySync } from "./node-crypto.ts";

export interface NodeGatewayOptions {
  log: Logger;
  /** The NATS connection's name, as the server's monitoring shows it. */
  connectionName: string;
  /** Default: one audit line per decision, where the settings' `audit` says (stdout unless set). */
  audit?: (event: AuditEvent) => void;
  metrics?: GatewayMetrics;
  /** Replaces the authentication built from the keys document (a shared replay store, say). */
  auth?: GatewayAuth;
}

/** What a reload may change: the keys document and the trigger file. */
export type ReloadableSettings = Pick<NodeGatewaySettings, "keysJson" | "triggers">;

export interface NodeGateway {
  app: GatewayApp;
  nats: NatsSource;
  /**
   * A new app from other keys and triggers, on the same NATS connection, signer and replay store (a
   * request taken before cannot be replayed after); throws, like the first build, when they are bad.
   */
  rebuild(files: ReloadableSettings): Promise<GatewayApp>;
  /** Where audit lines go; closed with the gateway. */
  audit: AuditSink;
}

export async function nodeGateway(
  settings: NodeGatewaySettings,
  options: NodeGatewayOptions,
): Promise<NodeGateway> {
  const { log } = options;
  const signer = await loadNodeSigner({ certPem: settings.certPem, keyPem: settings.keyPem });
  const nats = sharedConnection(
    () =>
      connectNats({
        servers: settings.natsServers,
        name: options.connectionName,
        auth: settings.natsAuth,
        ...(settings.natsTls ? { tls: settings.natsTls } : {}),
        ...(settings.natsInboxPrefix ? { inboxPrefix: settings.natsInboxPrefix } : {}),
        timeoutMs: settings.config.connectTimeoutMs,
        // Many concurrent callers' packets, each published when its signature is ready, share writes.
        coalesceWrites: true,
        log,
      }),
    { connectTimeoutMs: settings.config.connectTimeoutMs },
  );
  const buckets = { log, ...(settings.replicas === undefined ? {} : { replicas: settings.replicas }) };
  // The memory replay store is this process's (a Lambda's warm container's): only the KV store refuses a
  // replay across processes. Either outlives a reload, as does the audit sink.
  let replay: ReplayStore | undefined =
    settings.replayStore === "kv" ? kvReplayStore(nats, buckets) : undefined;
  const audit: AuditSink =
    options.audit === undefined
      ? auditSink(settings.audit ?? "stdout")
      : { write: options.audit, close() {} };
  const build = async (files: ReloadableSettings): Promise<GatewayApp> => {
    const auth =
      options.auth ??
      (await gatewayAuthFromKeys(files.keysJson, {
        verify: verifySync,
        ...(replay === undefined ? {} : { replay }),
      }));
    // The YAML parser is loaded only for a trigger file: most gateways have none, and a Lambda's cold start
    // would pay for it (without a file no parser runs).
    const parseTriggers =
      files.triggers === undefined
        ? parseTriggerJson
        : (await import("../lib/triggers/node.ts")).parseTriggerFile;
    const async = asyncParts({
      nats,
      settings: { ...settings, ...files },
      env: process.env,
      keys: auth.keys,
      parseTriggers,
      log,
    });
    replay = auth.replay;
    return createGateway({
      config: settings.config,
      signer,
      nats,
      auth,
      audit: audit.write,
      docs: docsAssets(),
      log,
      replyDigest,
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...async,
    });
  };
  return { app: await build(settings), nats, rebuild: build, audit };
}
