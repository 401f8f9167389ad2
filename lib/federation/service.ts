import { errorText, type Logger, ThrottledLog } from "../log/mod.ts";
import { collectiveSubject, federationSubject, statsSubject } from "../protocol/mod.ts";
import type { BrokerConfig, BrokerSide } from "./config.ts";
import { type Routed, type RouteResult, route } from "./route.ts";
import { FederationStats, type MetricFamily, type StatsDocument } from "./stats.ts";

/**
 * What the broker needs from a NATS connection. lib/transport's MessageBus satisfies it; the broker takes
 * it by injection so that this core never imports a NATS client.
 */
export interface BrokerBus {
  queueSubscribe(
    subject: string,
    queue: string,
    handler: (msg: { subject: string; data: Uint8Array }) => void,
  ): BrokerSubscription;
  /** False when the client refused the publish. */
  publish(subject: string, payload: Uint8Array | string): boolean;
  flush(): Promise<void>;
  /** Bytes published and not yet handed to the operating system: what back-pressure leaves in memory. */
  pendingBytes(): number;
  isConnected(): boolean;
  connectedUrl(): string;
  onEvent(listener: (event: { type: string }) => void): () => void;
}

export interface BrokerSubscription {
  drain(): Promise<void>;
  unsubscribe(): void;
}

export interface FederationBrokerOptions {
  config: BrokerConfig;
  federation: BrokerBus;
  collective: BrokerBus;
  log: Logger;
  version: string;
  /** Milliseconds, for the stats document's clock. */
  now?: () => number;
}

const other = (side: BrokerSide): BrokerSide => (side === "federation" ? "collective" : "federation");
const monotonic = () => performance.now();
const SIDES = ["federation", "collective"] as const;
/**
 * One broker instance: consumes both queue groups, routes every packet with `route()`, publishes the
 * result on the other side, and keeps the work bounded. It holds no state that another instance needs.
 * It is in a side's queue group only while it can publish to the other side: a broker that lost one
 * connection would otherwise take its share of the other side's messages and drop them all.
 */
export class FederationBroker {
  readonly stats: FederationStats;
  private readonly config: BrokerConfig;
  private readonly buses: Record<BrokerSide, BrokerBus>;
  private readonly log: Logger;
  private readonly throttled: ThrottledLog;
  private readonly subscriptions: Partial<Record<BrokerSide, BrokerSubscription>> = {};
  private readonly unlisten: (() => void)[] = [];
  private statsTimer: ReturnType<typeof setInterval> | undefined;
  private state: "idle" | "running" | "stopping" | "stopped" = "idle";
  private idleWaiters: (() => void)[] = [];

  constructor(options: FederationBrokerOptions) {
    const now = options.now ?? Date.now;
    this.config = options.config;
    this.buses = { federation: options.federation, collective: options.collective };
    this.log = options.log;
    this.throttled = new ThrottledLog(options.log, options.config.logIntervalMs, now);
    this.stats = new FederationStats(
      {
        cluster: options.config.cluster,
        instance: options.config.instance,
        identity: options.config.identity,
        version: options.version,
        startTime: Math.floor(now() / 1000),
      },
      () => Math.floor(now() / 1000),
    );
  }

  /** Subscribes both sides and starts publishing stats. */
  start(): void {
    if (this.state !== "idle") throw new Error(`broker already ${this.state}`);
    this.state = "running";
    const { cluster } = this.config;
    for (const side of SIDES) {
      const bus = this.buses[side];
      this.unlisten.push(
        bus.onEvent((event) => {
          if (event.type === "slow_consumer") this.stats.slowConsumer(side);
          this.refreshConnection(side);
          this.followConnections();
        }),
      );
      this.refreshConnection(side);
    }
    this.followConnections();
    this.statsTimer = setInterval(() => this.publishStats(), this.config.statsIntervalMs);
    this.log("info", "federation broker started", {
      cluster,
      instance: this.config.instance,
      federation: this.buses.federation.connectedUrl(),
      collective: this.buses.collective.connectedUrl(),
    });
  }

  /** Ready to take work: subscribed, not stopping, and connected on both sides. */
  isReady(): boolean {
    return (
      this.state === "running" &&
      this.buses.federation.isConnected() &&
      this.buses.collective.isConnected() &&
      this.subscriptions.federation !== undefined &&
      this.subscriptions.collective !== undefined
    );
  }

  isStopped(): boolean {
    return this.state === "stopped";
  }

  statsDocument(): StatsDocument {
    this.refreshConnection("federation");
    this.refreshConnection("collective");
    return this.stats.snapshot(this.isReady() ? "OK" : "CRITICAL");
  }

  metricFamilies(): MetricFamily[] {
    this.refreshConnection("federation");
    this.refreshConnection("collective");
    return this.stats.metricFamilies();
  }

  /**
   * Stops taking work (the queue groups hand new messages to other instances), finishes what was already
   * delivered, waits up to `graceMs` for in-flight publishes to be confirmed, and flushes both sides.
   * The caller then drains and closes its connections.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.state !== "running") return;
    this.state = "stopping";
    clearInterval(this.statsTimer);
    this.log("info", "federation broker stopping", { in_flight: this.inFlightTotal() });
    await Promise.allSettled(SIDES.map((side) => this.subscriptions[side]?.drain()));
    const finished = await this.waitIdle(graceMs);
    if (!finished) this.log("warn", "stopped with messages in flight", { in_flight: this.inFlightTotal() });
    this.publishStats();
    await Promise.allSettled([this.buses.federation.flush(), this.buses.collective.flush()]);
    for (const off of this.unlisten) off();
    this.throttled.flush(true);
    this.state = "stopped";
    this.log("info", "federation broker stopped", { stats: this.stats.snapshot("CRITICAL") });
  }

  /**
   * Joins a side's queue group when the other side can be published to and leaves it when it cannot, so
   * that the healthy instances get that side's messages meanwhile. A subscription made while its own side is
   * disconnected reaches the server when the client reconnects.
   */
  private followConnections(): void {
    if (this.state !== "running") return;
    const { cluster } = this.config;
    for (const side of SIDES) {
      const egest = other(side);
      const canPublish = this.buses[egest].isConnected();
      const held = this.subscriptions[side];
      if (canPublish && held === undefined) {
        const subject = side === "federation" ? federationSubject(cluster) : collectiveSubject(cluster);
        this.subscriptions[side] = this.buses[side].queueSubscribe(subject, `${cluster}_${side}`, (msg) =>
          this.handle(side, msg.data),
        );
        this.log("info", "joined queue group", { side, queue: `${cluster}_${side}` });
      } else if (!canPublish && held !== undefined) {
        delete this.subscriptions[side];
        held.unsubscribe();
        this.log("warn", "left queue group: the other side is disconnected", {
          side,
          queue: `${cluster}_${side}`,
          disconnected: egest,
        });
      }
    }
  }

  private handle(side: BrokerSide, body: Uint8Array): void {
    this.stats.received(side);
    const egestSide = other(side);
    const backlog = this.buses[egestSide].pendingBytes();
    if (this.stats.inFlight(side) >= this.config.inFlight || backlog >= this.config.maxPendingBytes) {
      this.stats.dropped(side, "overloaded");
      this.throttled.note(`dropped:${side}:overloaded`, "warn", "dropped message: the broker is overloaded", {
        side,
        reason: "overloaded",
        in_flight: this.stats.inFlight(side),
        pending_bytes: backlog,
      });
      return;
    }
    const started = monotonic();
    let result: RouteResult;
    try {
      result = route({ side, body }, this.config, {
        ingestUrl: this.buses[side].connectedUrl(),
        egestUrl: this.buses[egestSide].connectedUrl(),
        worker: 0,
      });
    } catch (err) {
      // route() never throws on bad input; should a bug make it, the message is still accounted for.
      this.stats.dropped(side, "internal_error");
      this.throttled.note(`dropped:${side}:internal_error`, "error", "dropped message: routing failed", {
        side,
        reason: "internal_error",
        error: errorText(err),
      });
      return;
    }
    if (!result.ok) {
      this.stats.refused(side, result.reason);
      this.throttled.note(`refused:${side}:${result.reason}`, "warn", "refused packet", {
        side,
        reason: result.reason,
        detail: result.detail,
        ...(result.requestId ? { request_id: result.requestId } : {}),
      });
      return;
    }
    const routed = monotonic();
    this.stats.routed(side, (routed - started) / 1000);
    if (result.targets.length <= this.config.batchSize) {
      // Handed to the client in one go: nothing stays in flight here, and the client's backlog is
      // what the next message is judged by.
      this.publishBatch(result, 0, result.targets.length);
      this.stats.egestTime(egestSide, (monotonic() - routed) / 1000);
      return;
    }
    this.stats.adjustInFlight(side, 1);
    this.fanOut(result, routed)
      .catch((err: unknown) => {
        this.log("error", "fan-out failed", { side, request_id: result.requestId, error: String(err) });
      })
      .finally(() => {
        this.stats.adjustInFlight(side, -1);
        if (this.inFlightTotal() === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
  }

  /**
   * Publishes a large fan-out in batches and waits for the server to confirm each before the next, so that
   * the event loop (and with it the reply path) keeps turning and the client's buffers stay small.
   */
  private async fanOut(result: Routed, routed: number): Promise<void> {
    const egestSide = other(result.side);
    const { batchSize } = this.config;
    for (let start = 0; start < result.targets.length; start += batchSize) {
      // A failed flush means a lost connection; the next publishes fail and are counted as such.
      if (start > 0) await this.buses[egestSide].flush().catch(() => {});
      this.publishBatch(result, start, Math.min(start + batchSize, result.targets.length));
    }
    this.stats.egestTime(egestSide, (monotonic() - routed) / 1000);
  }

  private publishBatch(result: Routed, from: number, to: number): void {
    const egestSide = other(result.side);
    const bus = this.buses[egestSide];
    let sent = 0;
    let failed = 0;
    for (let i = from; i < to; i++) {
      if (bus.publish(result.targets[i]!, result.body)) sent++;
      else failed++;
    }
    this.stats.published(egestSide, sent);
    if (failed > 0) {
      this.stats.dropped(result.side, "publish_failed", failed);
      this.throttled.note(`dropped:${result.side}:publish_failed`, "error", "publish failed", {
        side: egestSide,
        reason: "publish_failed",
        failed,
        request_id: result.requestId,
        connected: bus.isConnected(),
      });
    }
  }

  private inFlightTotal(): number {
    return this.stats.inFlight("federation") + this.stats.inFlight("collective");
  }

  private waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlightTotal() === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private refreshConnection(side: BrokerSide): void {
    const bus = this.buses[side];
    this.stats.connection(side, bus.isConnected(), bus.connectedUrl(), bus.pendingBytes());
  }

  private publishStats(): void {
    this.throttled.flush();
    const doc = this.statsDocument();
    if (!this.buses.federation.publish(statsSubject(this.config.cluster), JSON.stringify(doc))) {
      this.throttled.note("stats_publish_failed", "warn", "could not publish stats", {
        subject: statsSubject(this.config.cluster),
      });
    }
  }
}
