// The gateway as both Node runtimes build it from their settings (the `choria-edge gateway` server and
// the Lambda entry): the signer, one NATS connection over TCP shared by every request, the keys with their
// replay store, and the KV-backed parts.

import { createPrivateKey, sign } from "node:crypto";
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
import { verifySync } from "../lib/security/http/node.ts";
import { loadSigner, type RequestSigner } from "../lib/security/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import { parseTriggerJson } from "../lib/triggers/mod.ts";
import { type AuditSink, auditSink } from "./audit-sink.ts";
import { docsAssets } from "./gateway-docs.ts";
import type { NodeGatewaySettings } from "./gateway-env.ts";

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

/**
 * The same signer as `loadSigner` (same checks at start-up, byte-identical signatures), signing on the
 * calling thread with a KeyObject parsed once: WebCrypto's sign hops to libuv's pool and back, which on a
 * busy gateway adds more latency than the signature's own CPU, and costs more CPU per call. It lives here
 * rather than in lib/security/node.ts, whose X.509 library the Node gateway and Lambda would then load.
 */
export async function loadNodeSigner(material: { certPem: string; keyPem: string }): Promise<RequestSigner> {
  const checked = await loadSigner(material);
  const key = createPrivateKey(material.keyPem);
  return {
    certname: checked.certname,
    pubcert: checked.pubcert,
    sign: (message) => Promise.resolve(sign("sha256", Buffer.from(message, "utf8"), key).toString("base64")),
  };
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
