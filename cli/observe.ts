import { ClusterView, parseStatsDocument, renderClusterSnapshot } from "../lib/federation/mod.ts";
import { statsSubject } from "../lib/protocol/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import { commandArgs } from "./args.ts";
import {
  federationTarget,
  localStack,
  NATS_CLIENT_OPTIONS,
  NATS_CLIENT_USAGE,
  natsClientChoice,
} from "./local-stack.ts";

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

interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

const OPTIONS = [
  { flag: "cluster", kind: "string" },
  { flag: "server", kind: "string" },
  { flag: "json", kind: "bool", default: false },
  { flag: "count", kind: "string" },
  { flag: "stale", kind: "string" },
  ...NATS_CLIENT_OPTIONS,
] as const;

/** `choria-edge observe`: prints the cluster view until interrupted (or `--count` updates). */
export async function runObserve(argv: string[], out: Output = process.stdout): Promise<number> {
  const args = commandArgs(
    "observe",
    USAGE,
    OPTIONS,
    argv,
    { stdout: out, stderr: process.stderr },
    { positionals: false },
  );
  if (typeof args === "number") return args;
  const { values } = args;
  const stack = localStack(process.stderr);
  const { cluster, server } = federationTarget(values, stack);
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count);
  const stale = values.stale === undefined ? 30_000 : Number(values.stale);
  if (!(count > 0) || !(stale > 0)) {
    process.stderr.write("choria-edge observe: --count and --stale take positive numbers\n");
    return 2;
  }
  let subject: string;
  try {
    subject = statsSubject(cluster);
  } catch (err) {
    process.stderr.write(`choria-edge observe: ${(err as Error).message}\n`);
    return 2;
  }

  const choice = natsClientChoice(args.str, server, stack);
  if ("error" in choice) {
    process.stderr.write(`choria-edge observe: ${choice.error}\n`);
    return 2;
  }
  const bus = await connectNats({
    servers: server.split(",").map((s) => s.trim()),
    name: `choria-edge-observe_${cluster}`,
    ...choice,
    timeoutMs: 5000,
    log: (level, msg, fields) => {
      if (level === "warn" || level === "error")
        process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
    },
  });
  const view = new ClusterView(cluster, stale);
  const json = values.json;
  const tty = !json && out.isTTY === true;
  let updates = 0;
  let lastDraw = 0;
  const draw = () => {
    lastDraw = Date.now();
    const text = renderClusterSnapshot(view.snapshot(Date.now()), new Date());
    out.write(tty ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
  };

  await new Promise<void>((resolve) => {
    const finish = () => {
      clearInterval(redraw);
      process.off("SIGINT", finish);
      process.off("SIGTERM", finish);
      resolve();
    };
    process.on("SIGINT", finish);
    process.on("SIGTERM", finish);
    // On a terminal, redraw now and then even when nothing arrives, so that a silent instance ages out.
    const redraw = setInterval(() => {
      if (tty && Date.now() - lastDraw > 1000) draw();
    }, 1000);
    if (tty) draw();
    bus.subscribe(subject, (msg) => {
      const doc = parseStatsDocument(new TextDecoder().decode(msg.data));
      if (doc === undefined || !view.update(doc, Date.now())) return;
      updates++;
      if (json) {
        const snapshot = view.snapshot(Date.now());
        out.write(`${JSON.stringify({ time: new Date().toISOString(), from: doc.instance, ...snapshot })}\n`);
      } else if (!tty || Date.now() - lastDraw > 250) {
        draw();
      }
      if (updates >= count) finish();
    });
  });
  await bus.close();
  return 0;
}
