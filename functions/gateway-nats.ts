// The gateway's federation NATS settings in every runtime (the Node server, Lambda, Workers): one parser, so
// that each runtime takes the same options as the broker and collector and refuses, at start-up, one it
// cannot honour instead of connecting without it. No node: imports: the Worker bundle includes this file.
import { type NatsAuth, type NatsTlsFiles, natsConnectionChoice } from "../lib/transport/mod.ts";

export type GatewayRuntime = "node" | "lambda" | "workers";

export interface GatewayNatsSettings {
  natsServers: string[];
  natsAuth: NatsAuth;
  /** CA to verify the NATS servers, and a client certificate for servers that ask for one (TCP only). */
  natsTls?: NatsTlsFiles;
  /** Subject prefix of request replies instead of `_INBOX` (matching the server's permissions). */
  natsInboxPrefix?: string;
  /** JetStream replicas of the buckets this gateway creates (jobs, data, replay); 1 by default. */
  replicas?: number;
}

/** What workerd cannot do, and what to do instead. */
const WORKERS_REFUSE: Record<string, string> = {
  "nats-tls-cert":
    "a Worker's WebSocket cannot present a TLS client certificate; log in with an nkey seed, creds or user/password, on a websocket listener that does not verify client certificates",
  "nats-tls-key":
    "a Worker's WebSocket cannot present a TLS client certificate; log in with an nkey seed, creds or user/password, on a websocket listener that does not verify client certificates",
  "nats-tls-ca":
    "a Worker trusts the public certificate authorities only; give the websocket listener a certificate from one",
  "nats-credentials": "a Worker has no file system; put the file's text in CHORIA_EDGE_GATEWAY_NATS_CREDS",
};

/** The name an operator set an option by: the flag and the variable on Node and Lambda, the variable on Workers. */
export function gatewayOptionName(flag: string, runtime: GatewayRuntime): string {
  const variable = `CHORIA_EDGE_GATEWAY_${flag.toUpperCase().replaceAll("-", "_")}`;
  return runtime === "workers" ? variable : `--${flag} (${variable})`;
}

/** Servers, auth, TLS, inbox prefix and replicas; an error names the option to change. */
export function gatewayNatsSettings(
  get: (flag: string) => string | undefined,
  runtime: GatewayRuntime,
): GatewayNatsSettings | { error: string } {
  const name = (flag: string) => gatewayOptionName(flag, runtime);
  if (runtime === "workers") {
    const refused = Object.keys(WORKERS_REFUSE).find((flag) => get(flag));
    if (refused) return { error: `${name(refused)} is set: ${WORKERS_REFUSE[refused]}` };
  }
  const servers = (get("nats-servers") ?? "nats://127.0.0.1:4222").split(",").map((s) => s.trim());
  const websocket = /^wss?:\/\//i;
  const wrongScheme = servers.find((s) => websocket.test(s) !== (runtime === "workers"));
  if (wrongScheme !== undefined)
    return {
      error:
        runtime === "workers"
          ? `${name("nats-servers")}: ${wrongScheme} is not ws:// or wss://; a Worker reaches NATS through the server's websocket listener`
          : `${name("nats-servers")}: ${wrongScheme} is a websocket URL; this gateway speaks NATS over TCP (nats:// or tls://)`,
    };
  const chosen = natsConnectionChoice(get, "nats-");
  const creds = get("nats-creds");
  if (!chosen.ok || (creds && chosen.auth.type !== "none"))
    return {
      error: `${name("nats-*")}: choose one of user/password, token, nkey seed, credentials file or creds text`,
    };
  const replicasText = get("replicas");
  const replicas = replicasText === undefined ? undefined : Number(replicasText);
  if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5))
    return { error: `${name("replicas")}: a whole number from 1 to 5, not ${replicasText}` };
  const inboxPrefix = get("nats-inbox-prefix");
  if (inboxPrefix !== undefined && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(inboxPrefix))
    return { error: `${name("nats-inbox-prefix")}: subject tokens without wildcards` };
  return {
    natsServers: servers,
    natsAuth: creds ? { type: "creds", text: creds } : chosen.auth,
    ...(chosen.tls ? { natsTls: chosen.tls } : {}),
    ...(inboxPrefix === undefined ? {} : { natsInboxPrefix: inboxPrefix }),
    ...(replicas === undefined ? {} : { replicas }),
  };
}
