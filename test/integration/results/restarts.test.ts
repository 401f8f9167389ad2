import { afterEach, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import type { NodeService } from "../../../lib/node/service.ts";
import type { JobStore } from "../../../lib/results/jobs/store.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";
import { type Nodes, simulatedNodes } from "../../unit/results/jobs/support.ts";
import {
  asyncRequest,
  collectorConfig,
  gatewaySide,
  memoryLog,
  nodesOn,
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

describe("restarts in the middle of a job", () => {
  it("replies that arrive while no collector runs wait in the stream; a restarted collector stores them all", async () => {
    const s = await stack();
    const targets = s.nodes.fleet.map((n) => n.identity);
    const first = await collector(s.server);
    const request = await asyncRequest(
      s.store,
      s.gatewayBus,
      s.nodes.client,
      { agent: "rpcutil", action: "ping" },
      { targets, timeout_ms: 60_000 },
    );
    await request.sendTo(targets.slice(0, 10));
    await waitUntil("the first half", async () => (await okCount(s.store, request.job.id)) === 10);
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
    const request = await asyncRequest(
      s.store,
      s.gatewayBus,
      s.nodes.client,
      { agent: "rpcutil", action: "ping" },
      { targets, timeout_ms: 60_000 },
    );
    await request.sendTo(targets.slice(0, 10));
    await waitUntil("the first half", async () => (await okCount(s.store, request.job.id)) === 10);

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
});
