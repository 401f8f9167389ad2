// A collector process killed (SIGKILL) while a job's replies arrive, and another started: with stream
// capture the replies wait in JetStream, so every node's result must be stored once. What the killed
// collector had fetched but not acknowledged comes back after the consumer's ack wait (2 s): both sizes
// wait for it and expect the job complete, its counts equal to its stored results.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { COLLECTOR_QUEUE, REPLY_STREAM } from "../../lib/results/jobs/subjects.ts";
import { sleep } from "../integration/federation/support.ts";
import { asyncRequest, gatewaySide, nodesOn, recordOf } from "../integration/results/support.ts";
import { startNatsServer } from "../support/nats-server.ts";
import { simulatedNodes } from "../unit/results/jobs/support.ts";
import { emptyRow, type Row, type Scope, until } from "./support.ts";

const CLI = join(import.meta.dirname, "..", "..", "bin", "choria-edge.mjs");

/** Starts `choria-edge collector` and waits for its "collector started" line; `warnings` are its later ones. */
async function spawnCollector(
  scope: Scope,
  url: string,
  name: string,
): Promise<{ child: ChildProcess; warnings: string[] }> {
  const child = spawn(
    process.execPath,
    [CLI, "collector", "--servers", url, "--name", name, "--retention", "1h", "--sweep-interval", "100ms"],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NODE_NO_WARNINGS: "1" } },
  );
  scope.watch(child.pid);
  scope.defer(() => child.kill("SIGKILL"));
  let log = "";
  const warnings: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
    for (const line of chunk.toString().split("\n"))
      if (/"level":"(warn|error)"/.test(line)) warnings.push(line.slice(0, 300));
  });
  if (!(await until(() => log.includes('"msg":"collector started"') || child.exitCode !== null, 30_000)))
    throw new Error(`collector ${name} did not start: ${log}`);
  if (child.exitCode !== null) throw new Error(`collector ${name} exited (${child.exitCode}): ${log}`);
  return { child, warnings };
}

export async function collectorKill(scope: Scope): Promise<Row> {
  const row = emptyRow("collector kill mid-job");
  const server = scope.watchServer(await startNatsServer({ jetstream: true, name: "results" }));
  const nodes = await simulatedNodes(scope.n(300, 40), 12);
  const { bus: nodesBus, service } = await nodesOn(server, nodes);
  scope.defer(() => nodesBus.close());
  const gateway = await gatewaySide(server);
  scope.defer(() => gateway.bus.close());
  const { child: first } = await spawnCollector(scope, server.url, "chaos-c1");
  const targets = nodes.fleet.map((n) => n.identity);
  const request = await asyncRequest(
    gateway.store,
    gateway.bus,
    nodes.client,
    { agent: "rpcutil", action: "ping" },
    { targets, timeout_ms: 60_000 },
  );
  const okCount = async () => (await recordOf(gateway.store, request.job.id)).counts.ok;
  const half = Math.floor(targets.length / 2);
  await request.sendTo(targets.slice(0, half));
  await until(async () => (await okCount()) > 0, 10_000);
  // The kill lands while the collector is storing: the rest is published in slices around it.
  const slices = 5;
  const rest = targets.slice(half);
  let killedAt = 0;
  for (let i = 0; i < slices; i++) {
    if (i === 1) {
      killedAt = Date.now();
      scope.kill(first);
    }
    await request.sendTo(rest.slice((i * rest.length) / slices, ((i + 1) * rest.length) / slices));
    await sleep(20);
  }
  await service.idle();
  const jsm = await jetstreamManager(gateway.bus.connection);
  const held = (await jsm.consumers.info(REPLY_STREAM, COLLECTOR_QUEUE)).num_ack_pending;
  const second = await spawnCollector(scope, server.url, "chaos-c2");
  const recovered = await until(
    async () => (await recordOf(gateway.store, request.job.id)).settled,
    scope.n(20_000, 15_000),
  );
  row.recoverySeconds = recovered ? (Date.now() - killedAt) / 1000 : null;
  const job = await recordOf(gateway.store, request.job.id);
  if (!recovered)
    row.problems.push(
      `job ${job.state} with ${job.counts.ok} of ${targets.length} ok (${held} held by the killed collector)`,
    );
  else if (job.state !== "complete") row.problems.push(`job ended ${job.state}`);
  const stored: string[] = [];
  for await (const result of gateway.store.results(job)) stored.push(result.identity);
  const unique = new Set(stored);
  row.sent = targets.length;
  row.answered = job.counts.ok;
  row.lost = targets.filter((t) => !unique.has(t)).length;
  row.duplicated = stored.length - unique.size;
  if (job.counts.no_reply > 0) row.refused.no_reply = job.counts.no_reply;
  // The job's books: its counts are the results stored for it, each target once.
  const counted = job.counts.ok + job.counts.failed + job.counts.no_reply;
  const uncounted = unique.size - counted;
  row.booksBalanced = uncounted === 0;
  if (!row.booksBalanced)
    row.problems.push(
      `counts ${JSON.stringify(job.counts)} but ${unique.size} results stored (${held} replies were held by the killed collector)`,
    );
  // What the surviving collector complained of says where a failed row went wrong.
  if (row.problems.length > 0) row.problems.push(...second.warnings.slice(0, 3));
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}
