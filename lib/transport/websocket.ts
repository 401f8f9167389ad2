import { wsconnect } from "@nats-io/nats-core";
import { authOptions, type LogFn, type NatsAuth, redactUrl } from "./auth.ts";
import { NatsBus } from "./bus.ts";

export interface ConnectWebSocketOptions {
  servers: string | string[];
  name: string;
  auth?: NatsAuth;
  /** Subject prefix of request replies instead of `_INBOX` (matching the server's permissions). */
  inboxPrefix?: string;
  /** Mandatory: wsconnect never settles in runtimes without a working WebSocket. */
  timeoutMs: number;
  log?: LogFn;
}

/**
 * Connects over WebSocket with the maintainers' `wsconnect` (for Workers and other edge runtimes).
 * Rejects with a clear error after `timeoutMs`: on Node 20, which has no global WebSocket, wsconnect
 * would otherwise wait forever without a word.
 */
export async function connectWebSocket(options: ConnectWebSocketOptions): Promise<NatsBus> {
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  const log = options.log ?? (() => {});
  const attempt = wsconnect({
    servers,
    name: options.name,
    timeout: options.timeoutMs,
    maxReconnectAttempts: -1,
    ...authOptions(options.auth),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const hint =
        typeof (globalThis as { WebSocket?: unknown }).WebSocket === "undefined"
          ? " (this runtime has no global WebSocket)"
          : "";
      reject(
        new Error(
          `websocket connection to ${servers.map(redactUrl).join(", ")} not established within ${options.timeoutMs} ms${hint}`,
        ),
      );
    }, options.timeoutMs);
  });
  try {
    const nc = await Promise.race([attempt, timeout]);
    const secure = servers.every((s) => s.startsWith("wss://"));
    const bus = new NatsBus(nc, { name: options.name, scheme: secure ? "wss" : "ws", log });
    log("info", "nats connected", { connection: options.name, server: bus.connectedUrl() });
    return bus;
  } catch (err) {
    // A connection that completes after we gave up must not linger.
    attempt.then((late) => late.close()).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
