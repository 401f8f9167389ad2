// `choria-edge data`: the trigger data store and its locks from a shell, the way an operator sets the
// values triggers read (`from: data.<key>`) and looks at who holds a lock, on the same JetStream KV
// bucket the gateways and collectors use.
import { DataStore, DEFAULT_DATA_BUCKET, InvalidKey, Locks, ValueTooLarge } from "../lib/data/mod.ts";
import { NatsKvBucket } from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import { commandArgs } from "./args.ts";
import { localStack, NATS_CLIENT_OPTIONS, NATS_CLIENT_USAGE, natsClientChoice } from "./local-stack.ts";

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

const OPTIONS = [
  { flag: "server", kind: "string" },
  { flag: "bucket", kind: "string", default: DEFAULT_DATA_BUCKET },
  { flag: "json", kind: "bool", default: false },
  ...NATS_CLIENT_OPTIONS,
] as const;

interface DataIo {
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
  const args = commandArgs("data", USAGE, OPTIONS, argv, io);
  if (typeof args === "number") return args;
  const { values, positionals, str } = args;
  const [action, key, value, ...extra] = positionals;
  const arity: Record<string, number> = { get: 1, put: 2, delete: 1, lock: 1 };
  if (action === undefined || arity[action] === undefined || extra.length > 0) {
    io.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (key === undefined || (arity[action] === 2) !== (value !== undefined)) {
    io.stderr.write(`choria-edge data ${action}: expected ${action === "put" ? "<key> <value>" : "<key>"}\n`);
    return 2;
  }
  const stack = localStack(io.stderr);
  const server =
    values.server ??
    process.env.CHORIA_EDGE_GATEWAY_NATS_SERVERS ??
    stack?.federation.url ??
    "nats://127.0.0.1:4222";
  const connection = natsClientChoice(str, server, stack);
  if ("error" in connection) {
    io.stderr.write(`choria-edge data: ${connection.error}\n`);
    return 2;
  }
  const bus = await connectNats({
    servers: server.split(",").map((s) => s.trim()),
    name: "choria-edge-data",
    ...connection,
    timeoutMs: 5000,
  });
  try {
    const store = new DataStore(await NatsKvBucket.open(bus.connection, { name: values.bucket, ttlMs: 0 }));
    const json = values.json;
    switch (action) {
      case "get": {
        const entry = await store.get(key);
        if (entry === undefined) {
          io.stderr.write(`no value for ${key}\n`);
          return 1;
        }
        io.stdout.write(json ? `${JSON.stringify({ key, ...entry })}\n` : `${entry.value}\n`);
        return 0;
      }
      case "put": {
        const text = value === "-" ? (await io.stdin()).replace(/\r?\n$/, "") : value!;
        const revision = await store.put(key, text);
        io.stdout.write(
          json ? `${JSON.stringify({ key, revision })}\n` : `stored ${key} (revision ${revision})\n`,
        );
        return 0;
      }
      case "delete":
        await store.delete(key);
        io.stdout.write(json ? `${JSON.stringify({ key, deleted: true })}\n` : `deleted ${key}\n`);
        return 0;
      default: {
        const state = await new Locks(store).inspect(key);
        const held = state !== undefined && !state.expired;
        if (json) io.stdout.write(`${JSON.stringify(state ?? { name: key, held: false })}\n`);
        else if (held)
          io.stdout.write(
            `${key} is held by ${state.holder} since ${new Date(state.acquiredAt).toISOString()}, until ${new Date(state.expiresAt).toISOString()} unless renewed (${state.renewals} renewals)\n`,
          );
        else io.stdout.write(`${key} is free\n`);
        return held ? 0 : 1;
      }
    }
  } catch (err) {
    if (err instanceof InvalidKey || err instanceof ValueTooLarge) {
      io.stderr.write(`choria-edge data: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await bus.close();
  }
}
