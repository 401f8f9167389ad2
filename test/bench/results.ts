// Async result collector benchmarks (numbers, not pass/fail):
//  (a) replies stored per second by one collector process and by two, for each capture mode: a burst of
//      real, hash-checked rpcutil#ping replies for one job, timed from the first publish until the job's
//      counts hold them all; once on collectors fresh from start-up (cold: the figure comparable with
//      earlier runs) and once more on the same, now warm, collectors;
//  (b) time from the last reply to the completion callback being delivered, for a 10-node job (median
//      of several) and for the big job (where the end includes reading all its results back once);
//  (c) KV space taken by one settled job of BENCH_JOB_NODES nodes.
// The summary rows (recordSummary) are (a) per instance and (b) for the big job, against the rate at which
// the same machine's nats-server takes raw JetStream publishes from one client, all in flight at once, and
// KV creates of the same size through the collector's write path (its floor), measured first. CPU per
// reply is given for the collectors and for nats-server.
// Sizes: BENCH_JOB_NODES (10000), BENCH_SMALL_RUNS (7); BENCH_QUICK=1 divides the node count by 10.
// BENCH_COLLECTOR_PROF=<dir> runs every collector under `node --cpu-prof`, writing its profile into <dir>
// when it stops (test/bench/support/profile.ts summarises one by self time).
// Collectors run as child processes of this file (`--collector <options>`), like deployed ones.
import { type ChildProcess, spawn } from "node:child_process";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { runCollector } from "../../functions/result-collector.ts";
import { broadcastSubject } from "../../lib/protocol/subjects.ts";
import { DEFAULT_BUCKET } from "../../lib/results/jobs/keys.ts";
import type { JobStore } from "../../lib/results/jobs/store.ts";
import { jobReplySubject } from "../../lib/results/jobs/subjects.ts";
import { newWebhookSecret } from "../../lib/results/jobs/webhook.ts";
import type { NatsBus } from "../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../lib/transport/node.ts";
import { gatewaySide, RETENTION_MS } from "../integration/results/support.ts";
import { type NatsServer, startNatsServer } from "../support/nats-server.ts";
import {
  CALLER,
  COLLECTIVE,
  type Nodes,
  type Receiver,
  signedRequest,
  simulatedNodes,
  startReceiver,
} from "../unit/results/jobs/support.ts";
import { cpuMs } from "./support/processes.ts";
import { recordSummary } from "./support/summary.ts";

if (process.argv[2] === "--collector") {
  process.exitCode = await runCollector(process.argv.slice(3));
} else {
  await main();
}

async function main(): Promise<void> {
  const quick = process.env.BENCH_QUICK === "1" ? 10 : 1;
  const nodeCount = Math.max(10, Math.floor(Number(process.env.BENCH_JOB_NODES ?? 10_000) / quick));
  const smallRuns = Number(process.env.BENCH_SMALL_RUNS ?? 7);
  const secret = newWebhookSecret();

  const started = performance.now();
  const nodes = await simulatedNodes(nodeCount, 5);
  // One broadcast answered by every simulated node: the replies of any job are these bodies (they carry no
  // reply subject), published to that job's subject.
  const request = await signedRequest(nodes, { agent: "rpcutil", action: "ping" }, "mcollective.reply.x.y");
  const handled = await nodes.host.handle(
    broadcastSubject(COLLECTIVE, "rpcutil"),
    request.body,
    "nats://bench",
  );
  if (!handled.ok) throw new Error(handled.detail);
  const replies = handled.replies.map((r) => r.body);
  const identities = nodes.fleet.map((n) => n.identity);
  const replyBytes = replies.reduce((sum, body) => sum + body.length, 0) / replies.length;
  console.log(
    `${nodeCount} replies of ${Math.round(replyBytes)} bytes made in ${ms(performance.now() - started)}; node ${process.version}, 2 cores shared with nats-server`,
  );

  // Same-run reference: what nats-server takes from one client publishing to a file stream with every
  // publish in flight at once (nats.js), with payloads the size of a stored result: the ceiling of any
  // collector's writes on this machine (a collector also reads and acknowledges each reply).
  const { js: raw, kv: rawKv } = await rawPublishRates(nodeCount, 380);
  console.log(
    `reference: ${nodeCount} raw JetStream publishes of 380 bytes in ${ms(raw.ms)} = ${Math.round(raw.perSecond)}/s (nats-server CPU ${Math.round(raw.serverUs)} µs each); as KV creates ${ms(rawKv.ms)} = ${Math.round(rawKv.perSecond)}/s (nats-server CPU ${Math.round(rawKv.serverUs)} µs each)`,
  );

  const rates = new Map<string, number>();
  let bigJob = 0;
  let bigJobWarm = 0;
  let smallMedian = 0;
  const receiver = await startReceiver(secret);
  try {
    for (const capture of ["stream", "queue"] as const) {
      for (const instances of [1, 2]) {
        const server = await startNatsServer({ jetstream: true });
        const collectors = await Promise.all(
          Array.from({ length: instances }, (_, i) => spawnCollector(server, capture, secret, `bench-${i}`)),
        );
        const gateway = await gatewaySide(server);
        try {
          // The first burst meets a collector fresh from start-up, its code not yet optimised by the JIT;
          // the second one a warm collector, as a deployed one mostly is.
          const bench = { gateway, nodes, requestId: request.requestId, identities, replies, receiver };
          const measure = (phase: "cold" | "warm") =>
            measuredBurst(bench, server, collectors, `capture=${capture} collectors=${instances}, ${phase}`);
          const run = await measure("cold");
          const warm = await measure("warm");
          rates.set(`${capture}/${instances}`, run.perSecond / instances);
          rates.set(`${capture}/${instances}/warm`, warm.perSecond / instances);
          if (capture === "stream" && instances === 1) {
            bigJob = run.callbackMs - run.publishedMs;
            bigJobWarm = warm.callbackMs - warm.publishedMs;
            for (const [phase, job] of [["cold", run] as const, ["warm", warm] as const])
              console.log(
                `(b) ${nodeCount}-node job, ${phase}: last reply published -> callback delivered ${ms(job.callbackMs - job.publishedMs)}; all counted -> callback ${ms(job.callbackMs - job.countedMs)}`,
              );
            const small: number[] = [];
            for (let i = 0; i < smallRuns; i++)
              small.push(await smallJob(gateway, nodes, request.requestId, identities, replies, receiver));
            small.sort((a, b) => a - b);
            smallMedian = small[small.length >> 1]!;
            console.log(
              `(b) 10-node job: last reply published -> callback delivered, median ${ms(smallMedian)} (min ${ms(small[0]!)}, max ${ms(small.at(-1)!)}, ${smallRuns} runs)`,
            );
            console.log(
              `(c) KV space for one settled ${nodeCount}-node job: ${kib(run.kvBytes)} (${Math.round(run.kvBytes / nodeCount)} bytes per node, ${run.kvEntries} entries)`,
            );
          }
        } finally {
          await gateway.bus.close();
          await Promise.all(collectors.map(stopProcess));
          await server.dispose();
        }
      }
    }
  } finally {
    await receiver.close();
  }

  const rate = (key: string) => thousands(rates.get(key)!);
  const rates2 = (instances: number) =>
    `${rate(`stream/${instances}`)} | ${rate(`queue/${instances}`)}; warm ${rate(`stream/${instances}/warm`)} | ${rate(`queue/${instances}/warm`)}`;
  const reference = `raw JetStream publish ${thousands(raw.perSecond)}/s, KV create ${thousands(rawKv.perSecond)}/s`;
  recordSummary([
    {
      measure: "collector, replies stored and counted/s, 1 instance (stream | queue capture)",
      figure: rates2(1),
      goal: "≥ 20k per instance",
      reference,
    },
    {
      measure: "collector, replies/s per instance, 2 instances (stream | queue capture)",
      figure: rates2(2),
      goal: "≥ 20k per instance",
      reference,
    },
    {
      measure: `${nodeCount}-node job: last reply -> callback`,
      figure: `${ms(bigJob)}; warm ${ms(bigJobWarm)}`,
      goal: "≤ 0.5 s",
      reference: `${nodeCount} raw JetStream publishes ${ms(raw.ms)}; 10-node job ${ms(smallMedian)}`,
    },
  ]);
}

/**
 * Publishes `count` messages of `bytes` to a file stream of a fresh server, all in flight at once: with
 * nats.js's `js.publish`, and as KV creates of distinct keys through the collector's own write path.
 */
async function rawPublishRates(count: number, bytes: number): Promise<{ js: Rate; kv: Rate }> {
  const server = await startNatsServer({ jetstream: true });
  const bus = await connectNats({ servers: server.url, name: "bench-raw" });
  try {
    const jsm = await jetstreamManager(bus.connection);
    await jsm.streams.add({ name: "RAW", subjects: ["raw.>"], storage: StorageType.File });
    const js = jetstream(bus.connection);
    const payload = new TextEncoder().encode("x".repeat(bytes));
    const rawRate = await timed(server, count, () =>
      Promise.all(Array.from({ length: count }, (_, i) => js.publish(`raw.n${i}`, payload))),
    );
    const bucket = await NatsKvBucket.open(bus.connection, { name: "raw_kv", ttlMs: RETENTION_MS });
    const kvRate = await timed(server, count, () =>
      Promise.all(Array.from({ length: count }, (_, i) => bucket.create(`job.raw.r.n${i}`, payload))),
    );
    return { js: rawRate, kv: kvRate };
  } finally {
    await bus.close();
    await server.dispose();
  }
}

interface Rate {
  ms: number;
  perSecond: number;
  /** nats-server CPU per operation, in µs. */
  serverUs: number;
}

async function timed(server: NatsServer, count: number, work: () => Promise<unknown>): Promise<Rate> {
  const cpu = cpuMs(server.pid);
  const t0 = performance.now();
  await work();
  const elapsed = performance.now() - t0;
  return {
    ms: elapsed,
    perSecond: count / (elapsed / 1000),
    serverUs: ((cpuMs(server.pid) - cpu) * 1000) / count,
  };
}

interface Bench {
  gateway: { bus: NatsBus; store: JobStore };
  nodes: Nodes;
  requestId: string;
  identities: string[];
  replies: string[];
  receiver: Receiver;
}

/** One burst, with the CPU the collectors and nats-server spent on it, said on one line. */
async function measuredBurst(
  bench: Bench,
  server: NatsServer,
  collectors: readonly ChildProcess[],
  label: string,
): Promise<Burst & { perSecond: number }> {
  const cpuBefore = collectors.map((c) => cpuMs(c.pid));
  const serverBefore = cpuMs(server.pid);
  const run = await burst(
    bench.gateway,
    bench.nodes,
    bench.requestId,
    bench.identities,
    bench.replies,
    bench.receiver,
  );
  const cpu = collectors.reduce((sum, c, i) => sum + cpuMs(c.pid) - (cpuBefore[i] ?? 0), 0);
  const serverCpu = cpuMs(server.pid) - serverBefore;
  const count = bench.identities.length;
  const perSecond = count / (run.countedMs / 1000);
  console.log(
    `(a) ${label}: ${count} replies stored and counted in ${ms(run.countedMs)} = ${Math.round(perSecond)} replies/s (publishing took ${ms(run.publishedMs)}); collector CPU ${Math.round((cpu * 1000) / count)} µs per reply (to the callback), nats-server ${Math.round((serverCpu * 1000) / count)} µs`,
  );
  return { ...run, perSecond };
}

interface Burst {
  publishedMs: number;
  countedMs: number;
  callbackMs: number;
  kvBytes: number;
  kvEntries: number;
}

async function burst(
  gateway: { bus: NatsBus; store: JobStore },
  nodes: Nodes,
  requestId: string,
  identities: string[],
  replies: string[],
  receiver: Receiver,
): Promise<Burst> {
  const before = await gateway.store.bucket.status();
  const job = await createJob(gateway.store, requestId, identities, receiver.url);
  const subject = jobReplySubject(COLLECTIVE, nodes.client.callerid, job);
  const delivered = receiver.deliveries.length;
  const t0 = performance.now();
  for (const body of replies) if (!gateway.bus.publish(subject, body)) throw new Error("publish refused");
  await gateway.bus.flush();
  const publishedMs = performance.now() - t0;
  let countedMs = 0;
  while (countedMs === 0) {
    const record = (await gateway.store.get(job))?.record;
    if (record !== undefined && (record.counts.ok >= identities.length || record.settled))
      countedMs = performance.now() - t0;
    else await sleep(5);
  }
  await until(() => receiver.deliveries.length > delivered, 120_000);
  const callbackMs = performance.now() - t0;
  const after = await gateway.store.bucket.status();
  return {
    publishedMs,
    countedMs,
    callbackMs,
    kvBytes: after.bytes - before.bytes,
    kvEntries: after.entries - before.entries,
  };
}

async function smallJob(
  gateway: { bus: NatsBus; store: JobStore },
  nodes: Nodes,
  requestId: string,
  identities: string[],
  replies: string[],
  receiver: Receiver,
): Promise<number> {
  const job = await createJob(gateway.store, requestId, identities.slice(0, 10), receiver.url);
  const subject = jobReplySubject(COLLECTIVE, nodes.client.callerid, job);
  const delivered = receiver.deliveries.length;
  for (const body of replies.slice(0, 10)) gateway.bus.publish(subject, body);
  await gateway.bus.flush();
  const t0 = performance.now();
  await until(() => receiver.deliveries.length > delivered, 30_000);
  return performance.now() - t0;
}

async function createJob(
  store: JobStore,
  requestId: string,
  targets: string[],
  url: string,
): Promise<string> {
  const outcome = await store.create({
    request_id: requestId,
    caller: CALLER,
    collective: COLLECTIVE,
    agent: "rpcutil",
    action: "ping",
    targets,
    timeout_ms: 300_000,
    callback: { kind: "url", url },
  });
  if (outcome.outcome !== "created") throw new Error(outcome.outcome);
  return outcome.job.id;
}

async function spawnCollector(
  server: NatsServer,
  capture: string,
  secret: string,
  name: string,
): Promise<ChildProcess> {
  const profileDir = process.env.BENCH_COLLECTOR_PROF;
  const profile = profileDir
    ? [
        "--cpu-prof",
        "--cpu-prof-dir",
        profileDir,
        "--cpu-prof-name",
        `${name}-${capture}-${Date.now()}.cpuprofile`,
      ]
    : [];
  const child = spawn(
    process.execPath,
    [
      ...profile,
      "--import",
      "tsx",
      import.meta.filename,
      "--collector",
      "--servers",
      server.url,
      "--name",
      name,
      "--bucket",
      DEFAULT_BUCKET,
      "--retention",
      String(RETENTION_MS),
      "--capture",
      capture,
      "--allow-http-callbacks",
      // The receiver listens on 127.0.0.1, an address callbacks are refused by default.
      "--allow-private-callbacks",
      "--callback-secret",
      secret,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector ${name} did not start: ${log}`)), 30_000);
    child.stderr?.on("data", (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
      if (log.includes('"msg":"collector started"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`collector ${name} exited (${code}): ${log}`)));
  });
  return child;
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("timed out");
    await sleep(2);
  }
}

function sleep(msDelay: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msDelay));
}

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
}

function thousands(perSecond: number): string {
  return `${(perSecond / 1000).toFixed(1)}k`;
}

function kib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}
