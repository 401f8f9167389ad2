// The public surface of lib/federation: import from here, not from the files behind it.
export {
  type BrokerConfig,
  type BrokerSide,
  brokerUsage,
  metricsAddress,
  parseBrokerConfig,
} from "./config.ts";
export { ClusterView, parseStatsDocument, renderClusterSnapshot } from "./observe.ts";
export { FederationBroker } from "./service.ts";
export type { MetricFamily, MetricSample } from "./stats.ts";
export { describeHops, renderTrace, type TraceReport } from "./trace.ts";
