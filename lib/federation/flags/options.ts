// The broker's options and their help, as data: `broker --help` and an option mistake answer from them
// without the schemas and the NATS client that ../config.ts reads them with.
import { type OptionSpec, optionsUsage } from "../../config/mod.ts";
import { natsOptionSpecs } from "../../transport/flags/mod.ts";

export type BrokerSide = "federation" | "collective";

const SIDE_OPTIONS = (side: BrokerSide): OptionSpec[] => [
  { flag: `${side}-servers`, kind: "list", help: `NATS URLs of the ${side} side (comma separated)` },
  ...natsOptionSpecs(`${side}-`, "the server"),
];

export const BROKER_OPTIONS: OptionSpec[] = [
  { flag: "cluster", kind: "string", help: "federation broker cluster name (default mcollective)" },
  { flag: "instance", kind: "string", help: "instance name, unique in the cluster (default <host>-<pid>)" },
  { flag: "identity", kind: "string", help: "identity recorded in seen-by (default the host name)" },
  { flag: "collectives", kind: "list", help: "collectives this cluster may reach (default mcollective)" },
  {
    flag: "reply-collectives",
    kind: "list",
    help: "collectives whose reply subjects may be a reply-to (default: --collectives)",
  },
  { flag: "allow-subjects", kind: "list", help: "extra allowed target subject patterns, NATS wildcards" },
  { flag: "max-hops", kind: "int", help: "refuse packets with more seen-by hops (default 10)" },
  { flag: "max-bytes", kind: "int", help: "refuse packets larger than this (default 1048576)" },
  { flag: "max-targets", kind: "int", help: "refuse requests with more targets (default 10000)" },
  { flag: "in-flight", kind: "int", help: "fan-outs in progress per side before dropping (default 1000)" },
  { flag: "max-pending-bytes", kind: "int", help: "unsent bytes per side before dropping (default 64 MiB)" },
  { flag: "batch-size", kind: "int", help: "publishes between flushes in a fan-out (default 500)" },
  { flag: "stats-interval", kind: "int", help: "ms between stats publications (default 5000)" },
  { flag: "log-interval", kind: "int", help: "ms between log lines for one refusal reason (default 10000)" },
  { flag: "connect-timeout", kind: "int", help: "ms to wait for each NATS connection (default 5000)" },
  { flag: "metrics-listen", kind: "string", help: "host:port for /metrics, /healthz, /readyz, or off" },
  { flag: "record-route", kind: "bool", help: "seed dialect: record the NATS server in seen-by too" },
  { flag: "servers", kind: "list", help: "NATS URLs for both sides unless a side names its own" },
  ...SIDE_OPTIONS("federation"),
  ...SIDE_OPTIONS("collective"),
];

export const BROKER_ENV_PREFIX = "CHORIA_EDGE_BROKER_";

export function brokerUsage(): string {
  return `usage: choria-edge broker [options]\n\nEvery option can also be set by its environment variable; flags win.\n\n${optionsUsage(BROKER_OPTIONS, BROKER_ENV_PREFIX)}`;
}
