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

export interface SideStats {
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
   * Prometheus text exposition. The `choria_federation_*` families carry go-choria's names and labels
   * (one worker, index 0, per stage) so existing Choria dashboards work; `choria_edge_federation_*`
   * adds what go-choria does not count.
   */
  renderPrometheus(): string {
    const { cluster, identity, instance } = this.id;
    const out: string[] = [];
    const choria = (name: string, worker: string, connectedTo: string) =>
      `{name=${q(name)},worker=${q(worker)},connected_to=${q(connectedTo)},cluster=${q(cluster)},identity=${q(identity)}}`;
    const edge = (extra: Record<string, string>) =>
      `{${Object.entries({ ...extra, cluster, identity, instance })
        .map(([k, v]) => `${k}=${q(v)}`)
        .join(",")}}`;
    const family = (name: string, type: string, help: string) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const stages = (ingest: BrokerSide) => {
      const egest = other(ingest);
      const transformer = ingest === "federation" ? "choria_request_transformer" : "choria_reply_transformer";
      return { ingest, egest, transformer };
    };
    const paths = [stages("federation"), stages("collective")];

    family("choria_federation_received_msgs", "counter", "How many messages were received by a stage");
    for (const { ingest, egest, transformer } of paths) {
      const s = this.sides[ingest];
      let ingestRefused = 0;
      for (const [reason, n] of s.refused) if (INGEST_REFUSALS.has(reason)) ingestRefused += n;
      const overloaded = s.dropped.get("overloaded") ?? 0;
      out.push(`choria_federation_received_msgs${choria("nats_ingest", "0", ingest)} ${s.received}`);
      out.push(
        `choria_federation_received_msgs${choria(transformer, "0", "unconnected")} ${s.received - ingestRefused - overloaded}`,
      );
      out.push(`choria_federation_received_msgs${choria("nats_egest", "0", egest)} ${s.routed}`);
    }

    family(
      "choria_federation_published_msgs",
      "counter",
      "How many messages were published by an egest stage",
    );
    for (const { egest } of paths) {
      out.push(
        `choria_federation_published_msgs${choria("nats_egest", "0", egest)} ${this.sides[egest].sent}`,
      );
    }

    family("choria_federation_errors", "counter", "How many messages a stage failed to handle");
    for (const { ingest, egest, transformer } of paths) {
      const s = this.sides[ingest];
      let ingestErrors = 0;
      let transformErrors = 0;
      for (const [reason, n] of s.refused) {
        if (INGEST_REFUSALS.has(reason)) ingestErrors += n;
        else transformErrors += n;
      }
      ingestErrors += s.dropped.get("overloaded") ?? 0;
      out.push(`choria_federation_errors${choria("nats_ingest", "0", ingest)} ${ingestErrors}`);
      out.push(`choria_federation_errors${choria(transformer, "0", "unconnected")} ${transformErrors}`);
      out.push(
        `choria_federation_errors${choria("nats_egest", "0", egest)} ${s.dropped.get("publish_failed") ?? 0}`,
      );
    }

    family("choria_federation_time", "summary", "Time spent handling a message in a stage, in seconds");
    for (const { ingest, egest, transformer } of paths) {
      const t = this.sides[ingest].transform;
      const e = this.sides[egest].egest;
      out.push(`choria_federation_time_sum${choria(transformer, "0", "unconnected")} ${t.sumSeconds}`);
      out.push(`choria_federation_time_count${choria(transformer, "0", "unconnected")} ${t.count}`);
      out.push(`choria_federation_time_sum${choria("nats_egest", "0", egest)} ${e.sumSeconds}`);
      out.push(`choria_federation_time_count${choria("nats_egest", "0", egest)} ${e.count}`);
    }

    family(
      "choria_edge_federation_refused_msgs",
      "counter",
      "Packets refused, by the side they came from and why",
    );
    for (const side of ["federation", "collective"] as const) {
      for (const reason of REFUSAL_REASONS) {
        out.push(
          `choria_edge_federation_refused_msgs${edge({ side, reason })} ${this.sides[side].refused.get(reason) ?? 0}`,
        );
      }
    }
    family("choria_edge_federation_dropped_msgs", "counter", "Accepted messages that could not be delivered");
    for (const side of ["federation", "collective"] as const) {
      for (const reason of DROP_REASONS) {
        out.push(
          `choria_edge_federation_dropped_msgs${edge({ side, reason })} ${this.sides[side].dropped.get(reason) ?? 0}`,
        );
      }
    }
    family("choria_edge_federation_replies_routed", "counter", "Replies routed back into the federation");
    out.push(`choria_edge_federation_replies_routed${edge({})} ${this.sides.collective.routed}`);
    const gauges: [string, string, string, (s: SideCounters) => number][] = [
      [
        "choria_edge_federation_in_flight",
        "gauge",
        "Fan-outs from this side still being published",
        (s) => s.inFlight,
      ],
      [
        "choria_edge_federation_pending_bytes",
        "gauge",
        "Bytes the side's NATS client holds unsent",
        (s) => s.pendingBytes,
      ],
      [
        "choria_edge_federation_connected",
        "gauge",
        "1 while the side's NATS connection is up",
        (s) => (s.connected ? 1 : 0),
      ],
      [
        "choria_edge_federation_slow_consumer_events",
        "counter",
        "Slow consumer events from the NATS client",
        (s) => s.slowConsumer,
      ],
    ];
    for (const [name, type, help, value] of gauges) {
      family(name, type, help);
      for (const side of ["federation", "collective"] as const) {
        out.push(`${name}${edge({ side })} ${value(this.sides[side])}`);
      }
    }
    return `${out.join("\n")}\n`;
  }
}

// Label values are escaped as the exposition format requires: backslash, quote and newline.
function q(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}
