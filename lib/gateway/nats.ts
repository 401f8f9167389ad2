// Where a request gets its NATS connection. Node and Lambda keep one per process and reuse it; Workers
// cannot share I/O objects between requests, so there the connection lives in a Durable Object or is
// made per request. Either way a connection that cannot be had in time becomes UpstreamUnavailable,
// which the gateway answers with a 503 problem.
import { errorText } from "../log/mod.ts";
import { type ReplyRouterStats, replyRouter } from "../results/mod.ts";
import type { MessageBus } from "../transport/mod.ts";

export class UpstreamUnavailable extends Error {
  override readonly name = "UpstreamUnavailable";
}

export interface NatsLease {
  readonly bus: MessageBus;
  /** Called once the request is finished with the connection. */
  release(): Promise<void>;
}

export type NatsStatus = "connected" | "reconnecting" | "not-connected";

export interface NatsSource {
  acquire(): Promise<NatsLease>;
  /** For /healthz; never connects. */
  status(): NatsStatus;
  /**
   * Replies routed to the request waiting for them, and dropped for want of one (late, after their
   * request ended, or for a request this process never made), on the shared connection if there is one.
   */
  replyStats?(): Pick<ReplyRouterStats, "routed" | "dropped"> | undefined;
  close(): Promise<void>;
}

export type Connect = () => Promise<MessageBus>;

/**
 * One connection for the life of the process, made on first use. A failed attempt is forgotten so the
 * next request tries again; while the client is reconnecting a request waits up to the connect timeout
 * for it, then gets a 503 rather than a request buffered towards nowhere.
 */
export function sharedConnection(connect: Connect, options: { connectTimeoutMs: number }): NatsSource {
  let current: Promise<MessageBus> | undefined;
  let bus: MessageBus | undefined;

  const open = (): Promise<MessageBus> => {
    const attempt = withTimeout(connect(), options.connectTimeoutMs).then(
      (connected) => {
        bus = connected;
        connected.onEvent((event) => {
          if (event.type !== "closed") return;
          if (bus === connected) bus = undefined;
          if (current === attempt) current = undefined;
        });
        return connected;
      },
      (err: unknown) => {
        if (current === attempt) current = undefined;
        throw new UpstreamUnavailable(`NATS unreachable: ${errorText(err)}`);
      },
    );
    current = attempt;
    return attempt;
  };

  return {
    async acquire() {
      const connected = await (current ?? open());
      if (!connected.isConnected()) await waitForReconnect(connected, options.connectTimeoutMs);
      return { bus: connected, release: async () => {} };
    },
    status() {
      if (bus === undefined) return "not-connected";
      return bus.isConnected() ? "connected" : "reconnecting";
    },
    replyStats() {
      return bus === undefined ? undefined : replyRouter(bus).stats();
    },
    async close() {
      const closing = current;
      current = undefined;
      bus = undefined;
      if (closing) await (await closing.catch(() => undefined))?.close();
    },
  };
}

/** A fresh connection for every request, closed when the request is done. */
export function connectionPerRequest(connect: Connect, options: { connectTimeoutMs: number }): NatsSource {
  const open = new Set<MessageBus>();
  return {
    async acquire() {
      let connected: MessageBus;
      try {
        connected = await withTimeout(connect(), options.connectTimeoutMs);
      } catch (err) {
        throw new UpstreamUnavailable(`NATS unreachable: ${errorText(err)}`);
      }
      open.add(connected);
      return {
        bus: connected,
        release: async () => {
          open.delete(connected);
          await connected.close().catch(() => {});
        },
      };
    },
    status: () => (open.size > 0 ? "connected" : "not-connected"),
    async close() {
      await Promise.all([...open].map((b) => b.close().catch(() => {})));
      open.clear();
    },
  };
}

function waitForReconnect(bus: MessageBus, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new UpstreamUnavailable(`NATS disconnected and not back within ${timeoutMs} ms`));
    }, timeoutMs);
    const stop = bus.onEvent((event) => {
      if (event.type === "reconnected") {
        clearTimeout(timer);
        stop();
        resolve();
      } else if (event.type === "closed") {
        clearTimeout(timer);
        stop();
        reject(new UpstreamUnavailable("NATS connection closed"));
      }
    });
    // It may have come back between the check and the subscription.
    if (bus.isConnected()) {
      clearTimeout(timer);
      stop();
      resolve();
    }
  });
}

/** Rejects after `ms`; a connection that completes later is closed so that it does not linger. */
function withTimeout(attempt: Promise<MessageBus>, ms: number): Promise<MessageBus> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      attempt.then((late) => late.close()).catch(() => {});
      reject(new Error(`no connection within ${ms} ms`));
    }, ms);
  });
  return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer));
}
