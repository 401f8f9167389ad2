// How trace, observe and data connect to NATS: the login their flags name, else the local ha stack's.
import { readFileSync } from "node:fs";
import type { StackFile } from "../infra/stack-file.ts";
import { errorText } from "../lib/log/mod.ts";
import {
  type LogFn,
  type NatsAuth,
  type NatsBus,
  type NatsTlsFiles,
  natsConnectionChoice,
} from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";

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
