import { readFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { authOptions, type LogFn, type NatsAuth, redactUrl } from "./auth.ts";
import { reconnectDelay } from "./backoff.ts";
import { NatsBus } from "./bus.ts";

export interface NatsTlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface ConnectNatsOptions {
  servers: string | string[];
  /** Connection name shown by nats-server and in logs. */
  name: string;
  auth?: NatsAuth;
  tls?: NatsTlsFiles;
  /** Milliseconds allowed for each connection attempt. */
  timeoutMs?: number;
  /** Keep trying until the first connection succeeds instead of failing at once (for long-lived services). */
  waitForServer?: boolean;
  log?: LogFn;
  reconnectBufferBytes?: number;
}

/**
 * Connects over TCP from Node. Once connected the client reconnects forever, backing off with jitter, and
 * logs every state change; credentials never appear in logs.
 */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsBus> {
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  const log = options.log ?? (() => {});
  const tls =
    options.tls && (options.tls.caFile || options.tls.certFile || options.tls.keyFile)
      ? options.tls
      : undefined;
  const startedAt = Date.now();
  let bus: NatsBus | undefined;
  log("info", "nats connecting", { connection: options.name, servers: servers.map(redactUrl) });
  const nc = await connect({
    servers,
    name: options.name,
    timeout: options.timeoutMs ?? 5000,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: options.waitForServer ?? false,
    reconnectDelayHandler: () => reconnectDelay(bus ? bus.disconnectedFor() : Date.now() - startedAt),
    ...(tls ? { tls } : {}),
    ...authOptions(options.auth, (path) => readFileSync(path)),
  });
  bus = new NatsBus(nc, {
    name: options.name,
    scheme: tls || servers.some((s) => s.startsWith("tls://")) ? "tls" : "nats",
    log,
    ...(options.reconnectBufferBytes === undefined
      ? {}
      : { reconnectBufferBytes: options.reconnectBufferBytes }),
  });
  log("info", "nats connected", { connection: options.name, server: bus.connectedUrl() });
  return bus;
}
