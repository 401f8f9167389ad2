import type { BrokerSide } from "./config.ts";
import { DROP_REASONS, type DropReason, REFUSAL_REASONS, type RefusalReason } from "./refusals.ts";

export const STATS_PROTOCOL = "choria-edge:federation_stats:1";

/** Refusals decided while reading the packet, which go-choria's ingest stage counts as its errors. */
const INGEST_REFUSALS: ReadonlySet<RefusalReason> = new Set([
  "malformed",
  "unsupported_protocol",
  "too_large",
  "too_deep",
  "not_federated",
  "too_many_targets",
  "too_many_hops",
]);

interface Timing {
  count: number;
  sumSeconds: number;
}

interface SideCounters {
  connected: boolean;
  connectedServer: string;
  /** Messages received on this side (requests on the federation side, replies on the collective side). */
  received: number;
  /** Messages that passed the checks and went on to be published on the other side. */
  routed: number;
  /** Publishes made on this side (one per target for requests, one per reply). */
  sent: number;
  inFlight: number;
  /** Bytes the side's NATS client holds unsent, as of the last refresh. */
  pendingBytes: number;
  lastMessage: number;
  slowConsumer: number;
  refused: Map<RefusalReason, number>;
  dropped: Map<DropReason, number>;
  /** Checking and rewriting, per message received here. */
  transform: Timing;
  /** Publishing to every target, per message published on this side. */
  egest: Timing;
}

interface SideStats {
  source: string;
  connected_server: string;
  received: number;
  sent: number;
  errors: number;
  in_flight: number;
  last_message: number;
}

/** The JSON document published on `choria.federation.<cluster>.stats`. */
export interface StatsDocument {
  protocol: typeof STATS_PROTOCOL;
  cluster: string;
  instance: string;
  identity: string;
  version: string;
  start_time: number;
  time: number;
  status: "OK" | "CRITICAL";
  /** Requests received from the federation; `sent` counts replies published back into it. */
  federation: SideStats;
  /** Replies received from the collective; `sent` counts request copies published into it. */
  collective: SideStats;
  refused: Partial<Record<RefusalReason, number>>;
  dropped: Partial<Record<DropReason, number>>;
  replies_routed: number;
  time_per_message: {
    request: { count: number; seconds: number };
    reply: { count: number; seconds: number };
  };
}

export interface StatsIdentity {
  cluster: string;
  instance: string;
  identity: string;
  version: string;
  /** Unix seconds. */
  startTime: number;
}

/** One Prometheus metric family and its current samples, for the process that serves /metrics. */
export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "summary";
  help: string;
  samples: MetricSample[];
}

export interface MetricSample {
  labels: Record<string, string>;
  value: number;
  /** A summary's samples are its `_sum` and `_count` series. */
  suffix?: "_sum" | "_count";
}

const SIDES = ["federation", "collective"] as const;
const other = (side: BrokerSide): BrokerSide => (side === "federation" ? "collective" : "federation");

function newSide(): SideCounters {
  return {
    connected: false,
    connectedServer: "unconnected",
    received: 0,
    routed: 0,
    sent: 0,
    inFlight: 0,
    pendingBytes: 0,
    lastMessage: 0,
    slowConsumer: 0,
    refused: new Map(),
    dropped: new Map(),
    transform: { count: 0, sumSeconds: 0 },
    egest: { count: 0, sumSeconds: 0 },
  };
}

function bump<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** Counters of one broker instance, keyed by the side a message arrived on. */
export class FederationStats {
  private readonly sides: Record<BrokerSide, SideCounters> = {
    federation: newSide(),
    collective: newSide(),
  };

  constructor(
    readonly id: StatsIdentity,
    private readonly nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  received(side: BrokerSide): void {
    const s = this.sides[side];
    s.received++;
    s.lastMessage = this.nowSeconds();
  }

  refused(side: BrokerSide, reason: RefusalReason): void {
    bump(this.sides[side].refused, reason);
  }

  dropped(side: BrokerSide, reason: DropReason, count = 1): void {
    bump(this.sides[side].dropped, reason, count);
  }

  /** A message from `side` passed every check; `seconds` is the time spent checking and rewriting it. */
  routed(side: BrokerSide, seconds: number): void {
    const s = this.sides[side];
    s.routed++;
    s.transform.count++;
    s.transform.sumSeconds += seconds;
  }

  /** Publishes made on `side` (the side a routed message leaves by). */
  published(side: BrokerSide, count: number): void {
    this.sides[side].sent += count;
  }

  /** Time spent publishing one message to all of its targets on `side`. */
  egestTime(side: BrokerSide, seconds: number): void {
    const t = this.sides[side].egest;
    t.count++;
    t.sumSeconds += seconds;
  }

  inFlight(side: BrokerSide): number {
    return this.sides[side].inFlight;
  }

  adjustInFlight(side: BrokerSide, delta: number): void {
    this.sides[side].inFlight += delta;
  }

  connection(side: BrokerSide, connected: boolean, server: string, pendingBytes = 0): void {
    const s = this.sides[side];
    s.connected = connected;
    s.connectedServer = connected ? server : "disconnected";
    s.pendingBytes = pendingBytes;
  }

  slowConsumer(side: BrokerSide): void {
    this.sides[side].slowConsumer++;
  }

  refusedTotal(side: BrokerSide): number {
    let total = 0;
    for (const n of this.sides[side].refused.values()) total += n;
    return total;
  }

  snapshot(status: "OK" | "CRITICAL"): StatsDocument {
    const { cluster } = this.id;
    const side = (name: BrokerSide): SideStats => {
      const s = this.sides[name];
      let dropped = 0;
      for (const n of s.dropped.values()) dropped += n;
      return {
        source: `choria.federation.${cluster}.${name}`,
        connected_server: s.connectedServer,
        received: s.received,
        sent: s.sent,
        errors: this.refusedTotal(name) + dropped,
        in_flight: s.inFlight,
        last_message: s.lastMessage,
      };
    };
    const refused: Partial<Record<RefusalReason, number>> = {};
    const dropped: Partial<Record<DropReason, number>> = {};
    for (const s of Object.values(this.sides)) {
      for (const [reason, n] of s.refused) refused[reason] = (refused[reason] ?? 0) + n;
      for (const [reason, n] of s.dropped) dropped[reason] = (dropped[reason] ?? 0) + n;
    }
    const timing = (name: BrokerSide) => {
      const s = this.sides[name];
      return {
        count: s.transform.count,
        seconds: s.transform.sumSeconds + this.sides[other(name)].egest.sumSeconds,
      };
    };
    return {
      protocol: STATS_PROTOCOL,
      cluster,
      instance: this.id.instance,
      identity: this.id.identity,
      version: this.id.version,
      start_time: this.id.startTime,
      time: this.nowSeconds(),
      status,
      federation: side("federation"),
      collective: side("collective"),
      refused,
      dropped,
      replies_routed: this.sides.collective.routed,
      time_per_message: { request: timing("federation"), reply: timing("collective") },
    };
  }

  /**
   * The counters as Prometheus metric families. The `choria_federation_*` families carry go-choria's
   * names and labels (one worker, index 0, per stage) so existing Choria dashboards work;
   * `choria_edge_federation_*` adds what go-choria does not count.
   */
  metricFamilies(): MetricFamily[] {
    const { cluster, identity, instance } = this.id;
    const choria = (name: string, connectedTo: string) => ({
      name,
      worker: "0",
      connected_to: connectedTo,
      cluster,
      identity,
    });
    const edge = (extra: Record<string, string> = {}) => ({ ...extra, cluster, identity, instance });
    const stages = (ingest: BrokerSide) => {
      const egest = other(ingest);
      const transformer = ingest === "federation" ? "choria_request_transformer" : "choria_reply_transformer";
      return { ingest, egest, s: this.sides[ingest], transformer };
    };
    const paths = [stages("federation"), stages("collective")];
    const ingestRefused = (s: SideCounters) => {
      let n = 0;
      for (const [reason, count] of s.refused) if (INGEST_REFUSALS.has(reason)) n += count;
      return n;
    };
    const bySide = (value: (s: SideCounters) => number): MetricSample[] =>
      SIDES.map((side) => ({ labels: edge({ side }), value: value(this.sides[side]) }));
    const byReason = <R extends string>(reasons: readonly R[], counts: (s: SideCounters) => Map<R, number>) =>
      SIDES.flatMap((side) =>
        reasons.map((reason) => ({
          labels: edge({ side, reason }),
          value: counts(this.sides[side]).get(reason) ?? 0,
        })),
      );

    return [
      {
        name: "choria_federation_received_msgs",
        type: "counter",
        help: "How many messages were received by a stage",
        samples: paths.flatMap(({ ingest, egest, s, transformer }) => [
          { labels: choria("nats_ingest", ingest), value: s.received },
          {
            labels: choria(transformer, "unconnected"),
            value: s.received - ingestRefused(s) - (s.dropped.get("overloaded") ?? 0),
          },
          { labels: choria("nats_egest", egest), value: s.routed },
        ]),
      },
      {
        name: "choria_federation_published_msgs",
        type: "counter",
        help: "How many messages were published by an egest stage",
        samples: paths.map(({ egest }) => ({
          labels: choria("nats_egest", egest),
          value: this.sides[egest].sent,
        })),
      },
      {
        name: "choria_federation_errors",
        type: "counter",
        help: "How many messages a stage failed to handle",
        samples: paths.flatMap(({ ingest, egest, s, transformer }) => [
          {
            labels: choria("nats_ingest", ingest),
            value: ingestRefused(s) + (s.dropped.get("overloaded") ?? 0),
          },
          { labels: choria(transformer, "unconnected"), value: this.refusedTotal(ingest) - ingestRefused(s) },
          { labels: choria("nats_egest", egest), value: s.dropped.get("publish_failed") ?? 0 },
        ]),
      },
      {
        name: "choria_federation_time",
        type: "summary",
        help: "Time spent handling a message in a stage, in seconds",
        samples: paths.flatMap(({ egest, s, transformer }) => {
          const e = this.sides[egest].egest;
          return [
            { labels: choria(transformer, "unconnected"), suffix: "_sum", value: s.transform.sumSeconds },
            { labels: choria(transformer, "unconnected"), suffix: "_count", value: s.transform.count },
            { labels: choria("nats_egest", egest), suffix: "_sum", value: e.sumSeconds },
            { labels: choria("nats_egest", egest), suffix: "_count", value: e.count },
          ];
        }),
      },
      {
        name: "choria_edge_federation_refused_msgs",
        type: "counter",
        help: "Packets refused, by the side they came from and why",
        samples: byReason(REFUSAL_REASONS, (s) => s.refused),
      },
      {
        name: "choria_edge_federation_dropped_msgs",
        type: "counter",
        help: "Accepted messages that could not be delivered",
        samples: byReason(DROP_REASONS, (s) => s.dropped),
      },
      {
        name: "choria_edge_federation_replies_routed",
        type: "counter",
        help: "Replies routed back into the federation",
        samples: [{ labels: edge(), value: this.sides.collective.routed }],
      },
      {
        name: "choria_edge_federation_in_flight",
        type: "gauge",
        help: "Fan-outs from this side still being published",
        samples: bySide((s) => s.inFlight),
      },
      {
        name: "choria_edge_federation_pending_bytes",
        type: "gauge",
        help: "Bytes the side's NATS client holds unsent",
        samples: bySide((s) => s.pendingBytes),
      },
      {
        name: "choria_edge_federation_connected",
        type: "gauge",
        help: "1 while the side's NATS connection is up",
        samples: bySide((s) => (s.connected ? 1 : 0)),
      },
      {
        name: "choria_edge_federation_slow_consumer_events",
        type: "counter",
        help: "Slow consumer events from the NATS client",
        samples: bySide((s) => s.slowConsumer),
      },
    ];
  }
}
