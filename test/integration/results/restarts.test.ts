import { spawn } from "node:child_process";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import type { NodeService } from "../../../lib/node/service.ts";
import type { JobStore } from "../../../lib/results/jobs/store.ts";
import { COLLECTOR_QUEUE, JOB_REPLY_WILDCARD, REPLY_STREAM } from "../../../lib/results/jobs/subjects.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { streamReplySource } from "../../../lib/transport/reply-source.ts";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";
import { type Nodes, simulatedNodes } from "../../unit/results/jobs/support.ts";
import {
  type AsyncRequest,
  asyncRequest,
  collectorConfig,
  gatewaySide,
  memoryLog,
  nodesOn,
  RETENTION_MS,
  recordOf,
  waitUntil,
} from "./support.ts";

// Every test here gets its own nats-server, since one of them restarts it.
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  cleanup = [];
});

interface Stack {
  server: NatsServer;
  store: JobStore;
  gatewayBus: NatsBus;
  nodesBus: NatsBus;
  service: NodeService;
  nodes: Nodes;
}

async function stack(): Promise<Stack> {
  const server = await startNatsServer({ jetstream: true });
  const nodes = await simulatedNodes(20, 11);
  const { bus: nodesBus, service } = await nodesOn(server, nodes);
  const { bus: gatewayBus, store } = await gatewaySide(server);
  const s: Stack = { server, store, gatewayBus, nodesBus, service, nodes };
  // The server last: a restart replaces it.
  cleanup.push(
    () => s.server.dispose(),
    () => nodesBus.close(),
    () => gatewayBus.close(),
  );
  return s;
}

async function collector(server: NatsServer, log = memoryLog()): Promise<RunningCollector> {
  const running = await startCollector(collectorConfig(server), { log });
  cleanup.push(() => running.stop());
  return running;
}

async function okCount(store: JobStore, id: string): Promise<number> {
  return (await recordOf(store, id)).counts.ok;
}

/** A job for every node, of which the first ten have answered and are counted. */
async function halfAnswered(s: Stack): Promise<AsyncRequest> {
  const targets = s.nodes.fleet.map((n) => n.identity);
  const request = await asyncRequest(
    s.store,
    s.gatewayBus,
    s.nodes.client,
    { agent: "rpcutil", action: "ping" },
    { targets, timeout_ms: 60_000 },
  );
  await request.sendTo(targets.slice(0, 10));
  await waitUntil("the first half", async () => (await okCount(s.store, request.job.id)) === 10);
  return request;
}

describe("restarts in the middle of a job", () => {
  it("replies that arrive while no collector runs wait in the stream; a restarted collector stores them all", async () => {
    const s = await stack();
    const targets = s.nodes.fleet.map((n) => n.identity);
    const first = await collector(s.server);
    const request = await halfAnswered(s);
    await first.stop();

    await request.sendTo(targets.slice(10));
    await s.service.idle();
    await s.gatewayBus.flush();
    // Nobody is collecting: the replies are in the capture stream, not in the job yet.
    expect(await okCount(s.store, request.job.id)).toBe(10);

    await collector(s.server);
    await waitUntil("the job to complete", async () => (await recordOf(s.store, request.job.id)).settled);
    const job = await recordOf(s.store, request.job.id);
    expect(job).toMatchObject({ state: "complete", counts: { ok: 20, no_reply: 0 } });
    const stored = new Set<string>();
    for await (const result of s.store.results(job)) stored.add(result.identity);
    expect(stored).toEqual(new Set(targets));
  });

  it("a nats-server restart loses no stored reply, and the job finishes once it is back", async () => {
    const s = await stack();
    const targets = s.nodes.fleet.map((n) => n.identity);
    const running = await collector(s.server);
    const request = await halfAnswered(s);

    await s.server.stop();
    s.server = await restartNatsServer(s.server);
    // The nodes too: a request published before their subscriptions are back reaches nobody.
    await waitUntil(
      "everyone to reconnect",
      () => running.bus.isConnected() && s.gatewayBus.isConnected() && s.nodesBus.isConnected(),
    );
    // JetStream is ready some moments after the port accepts connections.
    await waitUntil(
      "the store to answer",
      async () => (await s.store.get(request.job.id).catch(() => undefined)) !== undefined,
    );
    expect(await okCount(s.store, request.job.id)).toBe(10);

    await request.sendTo(targets.slice(10));
    await waitUntil(
      "the job to complete",
      async () => (await recordOf(s.store, request.job.id)).settled,
      20_000,
    );
    const job = await recordOf(s.store, request.job.id);
    expect(job).toMatchObject({ state: "complete", counts: { ok: 20, no_reply: 0 } });
  }, 40_000);

  // Issue 13, finding 11: replies handed to a collector that is then killed were redelivered only after
  // the consumer's 30 s ack wait, so the job stayed running that long after its last reply.
  it("a collector killed while it holds replies costs the job a few seconds, not the ack wait", async () => {
    const s = await stack();
    const targets = s.nodes.fleet.map((n) => n.identity);
    // The capture as an earlier release made it, with a 30 s ack wait: starting a collector updates it.
    await streamReplySource(s.gatewayBus.connection, {
      stream: REPLY_STREAM,
      subjects: [JOB_REPLY_WILDCARD],
      consumer: COLLECTOR_QUEUE,
      maxAgeMs: 86_400_000,
      ackWaitMs: 30_000,
    });
    const killed = await collectorProcess(s.server);
    const jsm = await jetstreamManager(s.gatewayBus.connection);
    const consumer = await jsm.consumers.info(REPLY_STREAM, COLLECTOR_QUEUE);
    expect(consumer.config.ack_wait).toBeLessThanOrEqual(nanos(2000));
    const request = await halfAnswered(s);

    // Frozen, the process still holds a pull request: the server hands it the rest, which it never acks.
    killed.process.kill("SIGSTOP");
    await request.sendTo(targets.slice(10));
    await waitUntil(
      "the frozen collector to hold every reply",
      async () => (await jsm.consumers.info(REPLY_STREAM, COLLECTOR_QUEUE)).num_ack_pending === 10,
    );
    const lastReplyAt = Date.now();
    killed.process.kill("SIGKILL");
    await killed.exited;

    await collector(s.server);
    await waitUntil(
      "the job to complete",
      async () => (await recordOf(s.store, request.job.id)).settled,
      40_000,
    );
    const elapsedMs = Date.now() - lastReplyAt;
    const job = await recordOf(s.store, request.job.id);
    expect(job).toMatchObject({ state: "complete", counts: { ok: 20, no_reply: 0 } });
    expect(elapsedMs).toBeLessThan(8000);
  }, 60_000);
});

const CLI = join(import.meta.dirname, "../../../cli/main.ts");

/** `choria-edge collector` in a process of its own, so that it can be killed; ready once it said so. */
async function collectorProcess(server: NatsServer) {
  const child = spawn(
    process.execPath,
    [
      ...["--import", "tsx", CLI, "collector", "--servers", server.url],
      ...["--retention", `${RETENTION_MS}ms`, "--sweep-interval", "100ms"],
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NODE_NO_WARNINGS: "1" } },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  let output = "";
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitUntil(
    "the collector process to start",
    () => {
      if (child.exitCode !== null) throw new Error(`the collector exited:\n${output}`);
      return output.includes('"collector started"');
    },
    20_000,
  );
  return { process: child, exited };
}
