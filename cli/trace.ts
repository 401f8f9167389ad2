// `choria-edge trace`: its usage and options only, so that `trace --help` loads no NATS client, signer or
// protocol schema; trace-run.ts sends the ping.
import { type CommandArgs, commandArgs } from "./args.ts";
import { NATS_CLIENT_OPTIONS, NATS_CLIENT_USAGE } from "./nats-options.ts";

const USAGE = `usage: choria-edge trace <identity> [options]

Sends one rpcutil#ping to <identity> through a federation broker cluster with seen-by recording on,
and prints the route hop by hop: client, NATS, broker, NATS, node, and back.

  --cluster <name>      broker cluster (env CHORIA_EDGE_BROKER_CLUSTER; default: the local stack's,
                        else mcollective)
  --collective <name>   the node's collective (default: the local stack's, else mcollective)
  --server <url>        federation-side NATS (env CHORIA_EDGE_BROKER_FEDERATION_SERVERS; default: the
                        local stack's, else nats://127.0.0.1:4222)
  --cert <file> --key <file>
                        client certificate and key (default the demo PKI's rip.mcollective in
                        $CHORIA_EDGE_HOME/pki, made by 'choria-edge keys' or npm start)

Defaults named "the local stack's" come from $CHORIA_EDGE_HOME/stack.json while a stack runs.
  --timeout <ms>        how long to wait for the reply (default 5000)
  --json                print the trace as one JSON object
${NATS_CLIENT_USAGE}`;

export const TRACE_OPTIONS = [
  { flag: "cluster", kind: "string" },
  { flag: "collective", kind: "string" },
  { flag: "server", kind: "string" },
  { flag: "cert", kind: "string" },
  { flag: "key", kind: "string" },
  { flag: "timeout", kind: "string", default: "5000" },
  { flag: "json", kind: "bool", default: false },
  ...NATS_CLIENT_OPTIONS,
] as const;

export interface Output {
  write(text: string): unknown;
}

export type TraceArgs = CommandArgs<typeof TRACE_OPTIONS>;

/** `choria-edge trace <identity>`: exit 0 with the route, 1 when no reply came, 2 on bad usage. */
export async function runTrace(argv: string[], out: Output = process.stdout): Promise<number> {
  const args = commandArgs("trace", USAGE, TRACE_OPTIONS, argv, { stdout: out, stderr: process.stderr });
  if (typeof args === "number") return args;
  const { values, positionals } = args;
  const identity = positionals[0];
  const timeoutMs = Number(values.timeout);
  if (identity === undefined || positionals.length > 1 || !(timeoutMs > 0)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const { traceRoute } = await import("./trace-run.ts");
  return traceRoute(args, { identity, timeoutMs }, out);
}
