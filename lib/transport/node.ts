import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { realClock, sleep } from "../clock/mod.ts";
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
  /** Keep trying, with the reconnect backoff, until the first connection succeeds or `signal` aborts,
   * instead of failing at once (for long-lived services started alongside their nats-server). */
  waitForServer?: boolean;
  signal?: AbortSignal;
  log?: LogFn;
  /**
   * Prefix of the subjects request replies (JetStream API answers, consumer deliveries) come back on,
   * instead of `_INBOX`: a server whose permissions give each user its own prefix keeps users from reading
   * each other's answers.
   */
  inboxPrefix?: string;
  /** See NatsBusOptions.coalesceWrites. */
  coalesceWrites?: boolean;
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
  const connectOptions = {
    servers,
    name: options.name,
    timeout: options.timeoutMs ?? 5000,
    maxReconnectAttempts: -1,
    // An async stack trace per request costs ~0.1 ms of CPU in the collectors' hot path; errors still say what failed.
    noAsyncTraces: true,
    reconnectDelayHandler: () => reconnectDelay(bus ? bus.disconnectedFor() : 0),
    ...(tls ? { tls } : {}),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    ...authOptions(options.auth, (path) => readFileSync(path)),
  };
  log("info", "nats connecting", { connection: options.name, servers: servers.map(redactUrl) });
  let nc: NatsConnection;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      nc = await connect(connectOptions);
      break;
    } catch (err) {
      if (!options.waitForServer) throw err;
      const wait = reconnectDelay(Date.now() - startedAt);
      log("warn", "nats connection failed, retrying", {
        connection: options.name,
        error: err instanceof Error ? err.message : String(err),
        retry_in_ms: wait,
      });
      await sleep(realClock, wait, options.signal);
    }
  }
  bus = new NatsBus(nc, {
    name: options.name,
    scheme: tls || servers.some((s) => s.startsWith("tls://")) ? "tls" : "nats",
    log,
    ...(options.coalesceWrites ? { coalesceWrites: true } : {}),
  });
  log("info", "nats connected", { connection: options.name, server: bus.connectedUrl() });
  return bus;
}
