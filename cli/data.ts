// `choria-edge data`: the trigger data store and its locks from a shell, the way an operator sets the
// values triggers read (`from: data.<key>`) and looks at who holds a lock, on the same JetStream KV
// bucket the gateways and collectors use.
// Only the usage and options are here, so that `data --help` loads no NATS client: data-run.ts does the rest.
import { DEFAULT_DATA_BUCKET } from "../lib/data/mod.ts";
import { type CommandArgs, commandArgs } from "./args.ts";
import { NATS_CLIENT_OPTIONS, NATS_CLIENT_USAGE } from "./nats-options.ts";

const USAGE = `usage: choria-edge data <get|put|delete|lock> <key> [value] [options]

Reads and writes the trigger data store (JetStream KV bucket ${DEFAULT_DATA_BUCKET} on the federation NATS).

  get <key>             print the value (exit 1 when there is none)
  put <key> <value>     store a value; "-" reads it from standard input
  delete <key>          remove the value
  lock <name>           who holds the lock and until when (exit 1 when nobody does)

  --server <url>        federation NATS (env CHORIA_EDGE_GATEWAY_NATS_SERVERS; default: the local stack's
                        from $CHORIA_EDGE_HOME/stack.json while it runs, else nats://127.0.0.1:4222)
  --bucket <name>       KV bucket (default ${DEFAULT_DATA_BUCKET})
  --json                print JSON: { key, value, revision } or the lock's state
${NATS_CLIENT_USAGE}`;

export const DATA_OPTIONS = [
  { flag: "server", kind: "string" },
  { flag: "bucket", kind: "string", default: DEFAULT_DATA_BUCKET },
  { flag: "json", kind: "bool", default: false },
  ...NATS_CLIENT_OPTIONS,
] as const;

export type DataArgs = CommandArgs<typeof DATA_OPTIONS>;

/** What the positionals ask for: put takes a value ("-": standard input), the others a key alone. */
export type DataAction =
  | { action: "put"; key: string; value: string }
  | { action: "get" | "delete" | "lock"; key: string };

export interface DataIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  stdin: () => Promise<string>;
}

const processIo: DataIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: async () => {
    let text = "";
    for await (const chunk of process.stdin) text += chunk;
    return text;
  },
};

/** `choria-edge data ...`: exit 0 on success, 1 when there is nothing to show, 2 on bad usage. */
export async function runData(argv: string[], io: DataIo = processIo): Promise<number> {
  const args = commandArgs("data", USAGE, DATA_OPTIONS, argv, io);
  if (typeof args === "number") return args;
  const [action, key, value, ...extra] = args.positionals;
  if (
    (action !== "get" && action !== "put" && action !== "delete" && action !== "lock") ||
    extra.length > 0
  ) {
    io.stderr.write(`${USAGE}\n`);
    return 2;
  }
  // put takes exactly a key and a value, the others exactly a key.
  const request: DataAction | undefined =
    key === undefined
      ? undefined
      : action === "put"
        ? value === undefined
          ? undefined
          : { action, key, value }
        : value === undefined
          ? { action, key }
          : undefined;
  if (request === undefined) {
    io.stderr.write(`choria-edge data ${action}: expected ${action === "put" ? "<key> <value>" : "<key>"}\n`);
    return 2;
  }
  const { runDataAction } = await import("./data-run.ts");
  return runDataAction(args, request, io);
}
