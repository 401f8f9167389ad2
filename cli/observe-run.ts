// `choria-edge observe` once its arguments are read: subscribes to the cluster's stats and draws them.
import { ClusterView, parseStatsDocument, renderClusterSnapshot } from "../lib/federation/mod.ts";
import { statsSubject } from "../lib/protocol/mod.ts";
import { federationTarget, localStack } from "./local-stack.ts";
import { connectClient } from "./nats-client.ts";
import type { ObserveArgs, Output } from "./observe.ts";

/** Prints the cluster view until interrupted (or `--count` updates): exit 0, or 2 on a bad value. */
export async function watchCluster(args: ObserveArgs, out: Output): Promise<number> {
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

  const bus = await connectClient("observe", args.str, server, stack, {
    name: `choria-edge-observe_${cluster}`,
    stderr: process.stderr,
    log: (level, msg, fields) => {
      if (level === "warn" || level === "error")
        process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
    },
  });
  if (typeof bus === "number") return bus;
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
