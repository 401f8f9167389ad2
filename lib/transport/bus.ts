import type { NatsConnection, Status } from "@nats-io/nats-core";
import { SUBJECT_MAX_LENGTH } from "../protocol/mod.ts";
import type { LogFn } from "./auth.ts";

interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
}

export type BusHandler = (msg: BusMessage) => void;

export interface BusSubscription {
  /** Stops interest after the messages already delivered to the client are handled. */
  drain(): Promise<void>;
  unsubscribe(): void;
}

export type BusEvent =
  | { type: "disconnected"; server: string }
  | { type: "reconnected"; server: string }
  | { type: "error"; error: string }
  | { type: "slow_consumer"; subject: string; pending: number }
  | { type: "closed" };

/**
 * The slice of a NATS connection the broker and the other services need. The pure cores depend on this
 * interface and get an implementation injected, so only lib/transport imports a NATS client.
 */
export interface MessageBus {
  /** The connection name shown in nats-server's connection list and in logs. */
  readonly name: string;
  subscribe(subject: string, handler: BusHandler): BusSubscription;
  queueSubscribe(subject: string, queue: string, handler: BusHandler): BusSubscription;
  /** Queues a publish; false when it cannot be sent: closed, disconnected, or over max_payload.
   * Never throws. */
  publish(subject: string, payload: Uint8Array | string): boolean;
  /** Resolves once the server has seen everything published before the call. */
  flush(): Promise<void>;
  /** Bytes published and not yet handed to the operating system (a slow or stalled server leaves them here). */
  pendingBytes(): number;
  /** Drains subscriptions, flushes, and closes. */
  drain(): Promise<void>;
  close(): Promise<void>;
  isConnected(): boolean;
  /** URL of the connected server without credentials, or "unknown" when disconnected (as Go records it). */
  connectedUrl(): string;
  onEvent(listener: (event: BusEvent) => void): () => void;
}

export interface NatsBusOptions {
  name: string;
  /** URL scheme to report in connectedUrl(): nats, tls, ws or wss. */
  scheme: string;
  log?: LogFn;
  /**
   * Holds the socket's writes until the end of the event loop's turn, so that what many requests publish
   * in one turn leaves in one write instead of one each (nats.js writes at the end of every microtask
   * queue): fewer system calls for a process publishing for many concurrent callers, for the rest of the
   * turn in latency.
   */
  coalesceWrites?: boolean;
}

interface NatsInternals {
  outbound?: { size(): number };
  transport?: { socket?: { writableLength?: number; cork?(): void; uncork?(): void } };
}

/** A MessageBus over a nats.js connection of any transport. */
export class NatsBus implements MessageBus {
  readonly name: string;
  private connected = true;
  private disconnectedAt = 0;
  private readonly listeners = new Set<(event: BusEvent) => void>();
  private readonly log: LogFn;
  private corked = false;

  constructor(
    readonly connection: NatsConnection,
    private readonly options: NatsBusOptions,
  ) {
    this.name = options.name;
    this.log = options.log ?? (() => {});
    void this.watchStatus();
    void connection.closed().then((err) => {
      this.connected = false;
      if (err)
        this.log("error", "nats connection closed by error", { connection: this.name, error: err.message });
      this.emit({ type: "closed" });
    });
  }

  subscribe(subject: string, handler: BusHandler): BusSubscription {
    return this.sub(subject, undefined, handler);
  }

  queueSubscribe(subject: string, queue: string, handler: BusHandler): BusSubscription {
    return this.sub(subject, queue, handler);
  }

  private sub(subject: string, queue: string | undefined, handler: BusHandler): BusSubscription {
    const sub = this.connection.subscribe(subject, {
      ...(queue === undefined ? {} : { queue }),
      callback: (err, msg) => {
        if (err) {
          this.log("error", "subscription error", { connection: this.name, subject, error: err.message });
          return;
        }
        try {
          handler({ subject: msg.subject, data: msg.data });
        } catch (handlerError) {
          // A handler bug must not take the connection's read loop down with it.
          this.log("error", "message handler failed", {
            connection: this.name,
            subject,
            error: handlerError instanceof Error ? handlerError.message : String(handlerError),
          });
        }
      },
    });
    return {
      drain: () => (sub.isClosed() ? Promise.resolve() : sub.drain()),
      unsubscribe: () => sub.unsubscribe(),
    };
  }

  publish(subject: string, payload: Uint8Array | string): boolean {
    // nats.js discards its outbound buffer on every reconnect attempt, so a publish made while
    // disconnected would be lost without a word: refuse it instead, so that the caller can count it.
    if (!this.connected || this.connection.isClosed() || this.connection.isDraining()) return false;
    // nats-server closes the whole connection over a control line longer than 4 KB: refuse the one
    // publish instead. Callers check subjects from packets long before this; this is the last line.
    if (subject.length > SUBJECT_MAX_LENGTH) return false;
    try {
      this.connection.publish(subject, payload);
      if (this.options.coalesceWrites) this.corkUntilTurnEnds();
      return true;
    } catch {
      return false;
    }
  }

  private corkUntilTurnEnds(): void {
    if (this.corked) return;
    const socket = this.internals()?.transport?.socket;
    if (socket?.cork === undefined || socket.uncork === undefined) return;
    socket.cork();
    this.corked = true;
    // A socket replaced by a reconnect meanwhile is uncorked all the same; a closing one flushes itself.
    setImmediate(() => {
      this.corked = false;
      socket.uncork?.();
    });
  }

  private internals(): NatsInternals | undefined {
    return (this.connection as unknown as { protocol?: NatsInternals }).protocol;
  }

  flush(): Promise<void> {
    return this.connection.flush();
  }

  pendingBytes(): number {
    // nats.js keeps unsent data first in its outbound buffer, then in the socket's write queue; neither is
    // in its public API, so read them defensively (the transport tests check that they are still there).
    const protocol = this.internals();
    return (protocol?.outbound?.size() ?? 0) + (protocol?.transport?.socket?.writableLength ?? 0);
  }

  async drain(): Promise<void> {
    if (this.connection.isClosed() || this.connection.isDraining()) return this.closedPromise();
    // A drain needs the server; without one it would wait for a reconnect that may never come.
    if (!this.isConnected()) return this.close();
    await this.connection.drain();
  }

  async close(): Promise<void> {
    if (!this.connection.isClosed()) await this.connection.close();
  }

  private async closedPromise(): Promise<void> {
    await this.connection.closed();
  }

  isConnected(): boolean {
    return this.connected && !this.connection.isClosed();
  }

  /** Milliseconds since the connection was lost, or 0 while connected. */
  disconnectedFor(now = Date.now()): number {
    return this.connected ? 0 : now - this.disconnectedAt;
  }

  connectedUrl(): string {
    if (!this.isConnected()) return "unknown";
    const server = this.connection.getServer();
    return server ? `${this.options.scheme}://${server}` : "unknown";
  }

  onEvent(listener: (event: BusEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: BusEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.log("error", "bus event listener failed", { connection: this.name, error: String(err) });
      }
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.connection.status()) this.onStatus(status);
  }

  private onStatus(status: Status): void {
    const connection = this.name;
    switch (status.type) {
      case "disconnect":
        this.connected = false;
        this.disconnectedAt = Date.now();
        this.log("warn", "nats disconnected", { connection, server: status.server });
        this.emit({ type: "disconnected", server: status.server });
        break;
      case "reconnect":
        this.connected = true;
        this.log("info", "nats reconnected", { connection, server: status.server });
        this.emit({ type: "reconnected", server: status.server });
        break;
      case "reconnecting":
        this.log("debug", "nats reconnecting", { connection });
        break;
      case "error":
        this.log("error", "nats error", { connection, error: status.error.message });
        this.emit({ type: "error", error: status.error.message });
        break;
      case "slowConsumer":
        this.log("warn", "nats slow consumer", {
          connection,
          subject: status.sub.getSubject(),
          pending: status.pending,
        });
        this.emit({ type: "slow_consumer", subject: status.sub.getSubject(), pending: status.pending });
        break;
      case "ldm":
        this.log("warn", "nats server entering lame duck mode", { connection, server: status.server });
        break;
      case "staleConnection":
        this.log("warn", "nats connection is stale", { connection });
        break;
      case "update":
        this.log("info", "nats cluster update", { connection, added: status.added, deleted: status.deleted });
        break;
      case "close":
        this.log("info", "nats connection closed", { connection });
        break;
      default:
        break;
    }
  }
}
