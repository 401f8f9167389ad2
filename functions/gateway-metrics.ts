// The Node gateway's /metrics: prom-client behind lib/gateway's metrics port, in a registry of its own
// (a test process may run several gateways), plus the NATS connection's state read at scrape time.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { GatewayMetrics } from "../lib/gateway/mod.ts";

export interface PromGatewayMetrics extends GatewayMetrics {
  render(): Promise<string>;
  readonly contentType: string;
}

const NATS_STATES = ["connected", "reconnecting", "not-connected"] as const;

type ReplyCounts = { routed: number; dropped: number } | undefined;

/** `natsState` and `replyCounts` (running totals of the current connection) are read at each scrape. */
export function promGatewayMetrics(
  natsState: () => string,
  replyCounts: () => ReplyCounts = () => undefined,
): PromGatewayMetrics {
  const registry = new Registry();
  const requests = new Counter({
    name: "choria_edge_gateway_requests_total",
    help: "Requests answered, by route pattern, method, status and problem reason (none when not a problem)",
    labelNames: ["route", "method", "status", "reason"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "choria_edge_gateway_request_duration_seconds",
    help: "Time until the response headers, by route pattern and method",
    labelNames: ["route", "method"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  new Gauge({
    name: "choria_edge_gateway_nats_state",
    help: "The federation NATS connection's state: 1 for the current one",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const current = natsState();
      for (const state of NATS_STATES) this.set({ state }, state === current ? 1 : 0);
    },
  });
  // The connection's totals start again with a new connection; the counter goes on from where it was
  // (short by the old total if the new connection passed it between two scrapes).
  const seen = { routed: 0, dropped: 0 };
  new Counter({
    name: "choria_edge_gateway_replies_total",
    help: "Node replies on the gateway's reply subscription: routed to the request waiting for them, or dropped for want of one (late, after their request ended)",
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      const counts = replyCounts();
      for (const outcome of ["routed", "dropped"] as const) {
        const now = counts?.[outcome] ?? seen[outcome];
        const added = now >= seen[outcome] ? now - seen[outcome] : now;
        this.inc({ outcome }, added);
        seen[outcome] = now;
      }
    },
  });
  return {
    request({ route, method, status, reason, seconds }) {
      requests.inc({ route, method, status: String(status), reason });
      latency.observe({ route, method }, seconds);
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
