// `choria-edge observe`: its usage and options only, so that `observe --help` loads no NATS client and no
// federation code; observe-run.ts watches the cluster.
import { type CommandArgs, commandArgs } from "./args.ts";
import { NATS_CLIENT_OPTIONS, NATS_CLIENT_USAGE } from "./nats-options.ts";

const USAGE = `usage: choria-edge observe [--cluster <name>] [--server <url>] [--json] [--count <n>]

Live view of a federation broker cluster from the stats every instance publishes on
choria.federation.<cluster>.stats: totals, each instance's share of the messages received and sent,
rates, in-flight work and errors.

  --cluster <name>       broker cluster (env CHORIA_EDGE_BROKER_CLUSTER; default: the local stack's,
                         else mcollective)
  --server <url>         federation-side NATS server (env CHORIA_EDGE_BROKER_FEDERATION_SERVERS;
                         default: the local stack's, else nats://127.0.0.1:4222)
  --json                 one JSON line per stats update instead of the table
  --count <n>            exit after n updates
  --stale <ms>           forget instances silent for this long (default 30000)
${NATS_CLIENT_USAGE}

The local stack's defaults come from $CHORIA_EDGE_HOME/stack.json while it runs.`;

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

export const OBSERVE_OPTIONS = [
  { flag: "cluster", kind: "string" },
  { flag: "server", kind: "string" },
  { flag: "json", kind: "bool", default: false },
  { flag: "count", kind: "string" },
  { flag: "stale", kind: "string" },
  ...NATS_CLIENT_OPTIONS,
] as const;

export type ObserveArgs = CommandArgs<typeof OBSERVE_OPTIONS>;

/** `choria-edge observe`: prints the cluster view until interrupted (or `--count` updates). */
export async function runObserve(argv: string[], out: Output = process.stdout): Promise<number> {
  const args = commandArgs(
    "observe",
    USAGE,
    OBSERVE_OPTIONS,
    argv,
    { stdout: out, stderr: process.stderr },
    { positionals: false },
  );
  if (typeof args === "number") return args;
  const { watchCluster } = await import("./observe-run.ts");
  return watchCluster(args, out);
}
