// The Node gateway's options (the `choria-edge gateway` command, the Lambda handler, and what `doctor`
// reads), with their help: data, apart from the code that reads them (gateway-env.ts, gateway-nats.ts), so
// that `gateway --help`, `doctor --help` and their option errors load neither the gateway nor NATS.
import { type OptionSpec, optionsUsage } from "../lib/config/mod.ts";
import { natsOptionSpecs } from "../lib/transport/flags/mod.ts";

/** The options gatewayNatsSettings reads, flag → help; the Node gateway lists them under `--help`. */
export const GATEWAY_NATS_OPTIONS: Record<string, string> = {
  "nats-servers": "federation NATS URLs, comma separated (default nats://127.0.0.1:4222)",
  // The broker's and collector's options, under nats- (a Worker refuses the TLS ones and a creds path).
  ...Object.fromEntries(
    natsOptionSpecs("nats-", "the federation NATS servers").map((o) => [o.flag, `NATS ${o.help}`]),
  ),
  "nats-creds": "the text of a NATS .creds file, instead of --nats-credentials (Workers: a secret)",
  "nats-inbox-prefix":
    "subject prefix for JetStream API answers instead of _INBOX, to match a server that gives each user its own (default _INBOX)",
  replicas:
    "JetStream replicas of the jobs, data and replay buckets when this gateway creates them (default 1; 3 on a 3-server cluster)",
};

// Every option is a string: flag → help, in the order `--help` lists them.
export const GATEWAY_OPTIONS: OptionSpec[] = Object.entries({
  listen: "host:port to serve HTTP on (default 127.0.0.1:8080)",
  "metrics-listen":
    "host:port for /metrics, /healthz and /readyz, apart from the API (Node server only; default off)",
  audit: "where audit lines go: stdout, stderr, file:<path> (appended, mode 0600) or off (default stdout)",
  ...GATEWAY_NATS_OPTIONS,
  clusters: 'federation clusters and their collectives: "C1=mcollective,other;C2=mcollective"',
  dialects:
    'clusters on the 2017 connector\'s wire dialect: "C2=seed" (default: every cluster v1, choria:transport:1)',
  cert: "gateway certificate file (default <state>/pki/gateway.privileged.mcollective.pem)",
  key: "gateway private key file (default <state>/pki/gateway.privileged.mcollective-key.pem)",
  "cert-pem": "gateway certificate as PEM text, instead of --cert",
  "key-pem": "gateway private key as PEM text, instead of --key",
  keys: "HTTP caller keys and policies, JSON file (default <state>/gateway-keys.json)",
  "keys-json": "the same as JSON text, instead of --keys",
  "public-url": "origin callers sign for, when a proxy in front changes it (https://gw.example.com)",
  identity: "senderid of the gateway's requests (default the certificate's name)",
  "max-body-bytes": "largest request body (default 65536)",
  "max-hook-body-bytes": "largest webhook body on /v1/hooks (default 1048576)",
  "max-timeout": "largest timeout a request may ask for, ms (default 60000)",
  "discovery-idle": "discovery ends once no new node answered for this long, ms (default 300)",
  "connect-timeout": "NATS connection attempt limit before answering 503, ms (default 2000)",
  "sync-budget":
    "with --jobs on, a sync request that may take longer than this answers 202 with a job once it has waited this long, ms (default 8000)",
  "replay-store":
    "memory (one process) or kv (JetStream KV on the federation NATS, shared by every instance; default memory)",
  jobs: "on: async requests (mode async, Prefer: respond-async) and /v1/jobs, in the collectors' JetStream KV bucket on the federation NATS; a collector must run (default off)",
  triggers: "webhook triggers, a YAML or JSON file (POST /v1/hooks/<name>; needs --jobs on)",
  "triggers-text": "the same as YAML or JSON text, instead of --triggers",
  "data-bucket": "JetStream KV bucket of trigger data and locks (default choria_edge_data)",
  "callback-seal-key":
    "base64 AES key (32 bytes) that callback secrets are sealed with in job records; the collectors need the same (prefer the environment variable)",
  "ready-file": 'write "ready <url>" to this file once listening (for scripts)',
}).map(([flag, help]) => ({ flag, help, kind: "string" }));

export const GATEWAY_ENV_PREFIX = "CHORIA_EDGE_GATEWAY_";

export function gatewayUsage(): string {
  return `usage: choria-edge gateway [options]\n\nServes the edge gateway over HTTP on Node. Every option can also be set by its environment variable; flags win.\n\n${optionsUsage(GATEWAY_OPTIONS, GATEWAY_ENV_PREFIX)}`;
}
