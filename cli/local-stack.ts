// The running local stack as the CLI commands see it: their defaults come from its stack.json, after
// their flags and environment variables and before the built-in defaults.
import { readFileSync } from "node:fs";
import { readStackFile, type StackFile } from "../infra/stack-file.ts";
import { stateDir } from "../lib/config/mod.ts";
import { errorText } from "../lib/log/mod.ts";
import {
  type LogFn,
  type NatsAuth,
  type NatsBus,
  type NatsTlsFiles,
  natsConnectionChoice,
} from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";

/**
 * The endpoints of the stack running from `$CHORIA_EDGE_HOME`, or undefined when none runs. A file left
 * by a stack that is gone is ignored, and said so on `warn`, so that nobody wonders where a default came from.
 */
export function localStack(warn: { write(text: string): unknown }): StackFile | undefined {
  const found = readStackFile(stateDir());
  if (found.state === "stale") warn.write(`choria-edge: ignoring ${found.path}: ${found.reason}\n`);
  return found.state === "running" ? found.stack : undefined;
}

/**
 * The broker cluster and federation NATS servers that observe and trace talk to: the flag, else the
 * broker's environment variable, else the local stack's, else the built-in default.
 */
export function federationTarget(
  given: { cluster?: string | undefined; server?: string | undefined },
  stack: StackFile | undefined,
): { cluster: string; server: string } {
  return {
    cluster: given.cluster ?? process.env.CHORIA_EDGE_BROKER_CLUSTER ?? stack?.cluster ?? "mcollective",
    server:
      given.server ??
      process.env.CHORIA_EDGE_BROKER_FEDERATION_SERVERS ??
      process.env.CHORIA_EDGE_BROKER_SERVERS ??
      stack?.federation.url ??
      "nats://127.0.0.1:4222",
  };
}

export interface NatsClientChoice {
  auth: NatsAuth;
  tls?: NatsTlsFiles;
  inboxPrefix?: string;
}

/**
 * How trace, observe and data log in: their auth and TLS flags; given none, and aimed at the local stack
 * of `--topology ha` (whose servers refuse a client without a role's nkey and certificate), the gateway
 * role's credentials from stack.json.
 */
function natsClientChoice(
  str: (flag: string) => string | undefined,
  servers: string,
  stack: StackFile | undefined,
): NatsClientChoice | { error: string } {
  const choice = natsConnectionChoice(str);
  if (!choice.ok) return { error: choice.error };
  const inboxPrefix = str("inbox-prefix");
  const given = choice.auth.type !== "none" || choice.tls !== undefined || inboxPrefix !== undefined;
  const ha = stack?.topology;
  if (given || ha === undefined || servers !== ha.federation_urls.join(","))
    return {
      auth: choice.auth,
      ...(choice.tls ? { tls: choice.tls } : {}),
      ...(inboxPrefix ? { inboxPrefix } : {}),
    };
  let seed: string;
  try {
    seed = readFileSync(ha.gateway.nkey_seed_file, "utf8").trim();
  } catch (err) {
    return { error: `the local stack's gateway nkey seed: ${errorText(err)}` };
  }
  return {
    auth: { type: "nkey", seed },
    tls: { caFile: ha.ca, certFile: ha.gateway.tls_cert, keyFile: ha.gateway.tls_key },
    inboxPrefix: ha.gateway.inbox_prefix,
  };
}

/**
 * The NATS connection of trace, observe and data, to `servers` (comma separated) with their login; or,
 * said on stderr, exit code 2 when their flags name no usable one.
 */
export async function connectClient(
  command: string,
  str: (flag: string) => string | undefined,
  servers: string,
  stack: StackFile | undefined,
  options: { name: string; stderr: { write(text: string): unknown }; log?: LogFn },
): Promise<NatsBus | number> {
  const choice = natsClientChoice(str, servers, stack);
  if ("error" in choice) {
    options.stderr.write(`choria-edge ${command}: ${choice.error}\n`);
    return 2;
  }
  return connectNats({
    servers: servers.split(",").map((s) => s.trim()),
    name: options.name,
    ...choice,
    timeoutMs: 5000,
    ...(options.log === undefined ? {} : { log: options.log }),
  });
}
