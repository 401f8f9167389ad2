// The collector's options and their help, as data: `collector --help` and an option mistake answer from
// them without the schemas and the NATS client that ../config.ts reads them with. The bucket's name is
// spelled out: keys.ts, where it lives, is in the Worker, which must not reach lib/config's node: modules
// through this file (test/unit/cli/collector-usage.test.ts keeps the two equal).
import { type OptionSpec, optionsUsage } from "../../../config/mod.ts";
import { natsOptionSpecs } from "../../../transport/flags/mod.ts";
import type { CollectorConfig } from "../node.ts";

interface Option extends OptionSpec {
  key:
    | keyof CollectorConfig
    | "user"
    | "password"
    | "token"
    | "nkey-seed"
    | "credentials"
    | "tls-ca"
    | "tls-cert"
    | "tls-key";
}

// The collector's help has always worded some NATS options its own way.
const NATS_HELP: Record<string, string> = {
  user: "NATS user name",
  password: "NATS password (prefer the environment variable)",
  token: "NATS auth token",
  credentials: "path of a .creds file",
};

export const COLLECTOR_OPTIONS: Option[] = [
  {
    flag: "servers",
    key: "servers",
    kind: "list",
    help: "NATS URLs of the federation side, where replies arrive",
  },
  ...natsOptionSpecs("", "the server").map((o) => ({
    ...o,
    key: o.flag as Option["key"],
    help: NATS_HELP[o.flag] ?? o.help,
  })),
  {
    flag: "name",
    key: "name",
    kind: "string",
    help: "connection name (default choria-edge-collector-<host>-<pid>)",
  },
  {
    flag: "inbox-prefix",
    key: "inboxPrefix",
    kind: "string",
    help: "subject prefix of request replies instead of _INBOX (as the server's permissions require)",
  },
  { flag: "bucket", key: "bucket", kind: "string", help: "KV bucket of jobs (default choria_edge_jobs)" },
  {
    flag: "data-bucket",
    key: "dataBucket",
    kind: "string",
    help: "KV bucket of trigger data and locks, released when a trigger's job ends (default choria_edge_data)",
  },
  {
    flag: "metrics-listen",
    key: "metricsListen",
    kind: "string",
    help: "host:port for /metrics, /healthz and /readyz (default off)",
  },
  {
    flag: "retention",
    key: "retentionMs",
    kind: "string",
    help: "how long jobs are kept, e.g. 7d (default 7d)",
  },
  {
    flag: "replicas",
    key: "replicas",
    kind: "string",
    help: "JetStream replicas of bucket and stream (default 1)",
  },
  {
    flag: "capture",
    key: "capture",
    kind: "string",
    help: "stream (JetStream, nothing lost) or queue (default stream)",
  },
  {
    flag: "capture-max-age",
    key: "captureMaxAgeMs",
    kind: "string",
    help: "how long captured replies wait (1d)",
  },
  {
    flag: "sweep-interval",
    key: "sweepIntervalMs",
    kind: "string",
    help: "deadline and callback checks (1s)",
  },
  { flag: "callback-secret", key: "callbackSecret", kind: "string", help: "whsec_ secret for URL callbacks" },
  {
    flag: "callback-seal-key",
    key: "callbackSealKey",
    kind: "string",
    help: "base64 AES key the gateways seal callback secrets with (the same as theirs; prefer the environment variable)",
  },
  { flag: "callback-timeout", key: "callbackTimeoutMs", kind: "string", help: "per callback attempt (15s)" },
  {
    flag: "callback-attempts",
    key: "callbackAttempts",
    kind: "string",
    help: "attempts before giving up (12)",
  },
  {
    flag: "callback-backoff",
    key: "callbackBackoffMs",
    kind: "string",
    help: "first retry delay, doubling (5s)",
  },
  {
    flag: "allow-http-callbacks",
    key: "allowHttpCallbacks",
    kind: "bool",
    help: "also post to http:// URLs",
  },
  {
    flag: "allow-private-callbacks",
    key: "allowPrivateCallbacks",
    kind: "bool",
    help: "also deliver callbacks to loopback, private, unique-local and CGNAT addresses",
  },
  {
    flag: "lambda-region",
    key: "lambdaRegion",
    kind: "string",
    help: "region for Lambda callbacks naming none",
  },
  { flag: "lambda-endpoint", key: "lambdaEndpoint", kind: "string", help: "Lambda API endpoint override" },
  {
    flag: "connect-timeout",
    key: "connectTimeoutMs",
    kind: "string",
    help: "per NATS connection attempt (5s)",
  },
];

export const COLLECTOR_ENV_PREFIX = "CHORIA_EDGE_COLLECTOR_";

export function collectorUsage(): string {
  return `usage: choria-edge collector [options]\n\nStores the replies of async requests in JetStream KV, ends jobs and delivers their callbacks.\nEvery option can also be set by its environment variable; flags win. Lambda credentials come\nfrom the AWS SDK's standard chain (AWS_* variables, profile, instance role).\n\n${optionsUsage(COLLECTOR_OPTIONS, COLLECTOR_ENV_PREFIX)}`;
}
