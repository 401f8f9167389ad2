import { afterEach, describe, expect, it } from "vitest";
import { startBroker } from "../../../functions/broker.ts";
import { type BrokerConfigInput, brokerConfigFrom } from "../../../lib/federation/config.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";
import {
  bus,
  CLUSTER,
  COLLECTIVE,
  collectReplies,
  eventually,
  federatedRequest,
  httpStatus,
  publishRequest,
  requestId,
  sleep,
  startResponders,
} from "./support.ts";

const NODES = ["node1.example.net", "node2.example.net", "node3.example.net"];
const BROADCAST = `${COLLECTIVE}.broadcast.agent.rpcutil`;

describe("broker service in process", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  async function servers(): Promise<[NatsServer, NatsServer]> {
    const pair = await Promise.all([startNatsServer(), startNatsServer()]);
    cleanup.push(() => Promise.all(pair.map((s) => s.dispose())));
    return pair;
  }

  async function broker(federation: string, collective: string, extra: Partial<BrokerConfigInput> = {}) {
    const parsed = brokerConfigFrom({
      cluster: CLUSTER,
      instance: "inproc",
      identity: "inproc.example.net",
      metricsListen: "127.0.0.1:0",
      federation: { servers: [federation] },
      collective: { servers: [collective] },
      ...extra,
    });
    if (!parsed.ok) throw new Error(parsed.error);
    const running = await startBroker(parsed.config, { log: () => {} });
    cleanup.push(() => running.stop());
    return running;
  }

  async function connect(url: string, name: string): Promise<MessageBus> {
    const b = await bus(url, name);
    cleanup.push(() => b.close());
    return b;
  }

  it("survives restarts of both nats-servers by reconnecting", async () => {
    let [fed, coll] = await servers();
    const running = await broker(fed.url, coll.url);
    const client = await connect(fed.url, "client");
    const nodes = await connect(coll.url, "nodes");
    startResponders(nodes, NODES);
    const replies = collectReplies(client);
    await nodes.flush();
    await client.flush();

    const roundTrip = async () => {
      const rid = requestId();
      publishRequest(client, federatedRequest(rid, [BROADCAST]));
      return (await replies.waitFor(rid, 3)).sort();
    };
    expect(await roundTrip()).toEqual(NODES);

    for (const which of ["collective", "federation"] as const) {
      const server = which === "collective" ? coll : fed;
      await server.stop();
      await eventually(async () =>
        (await httpStatus(`${running.httpUrl}/readyz`)) === 503 ? true : undefined,
      );
      const restarted = await restartNatsServer(server);
      if (which === "collective") coll = restarted;
      else fed = restarted;
      cleanup.push(() => restarted.dispose());
      await eventually(
        async () => ((await httpStatus(`${running.httpUrl}/readyz`)) === 200 ? true : undefined),
        10_000,
      );
      // The test's own client and nodes reconnect too; wait until their subscriptions are back.
      await eventually(() => (client.isConnected() && nodes.isConnected() ? true : undefined), 10_000);
      await Promise.all([client.flush(), nodes.flush()]);
      expect(await roundTrip()).toEqual(NODES);
    }
  });

  it("fans one request out to thousands of targets in batches, and keeps routing replies meanwhile", async () => {
    const [fed, coll] = await servers();
    const running = await broker(fed.url, coll.url, { batchSize: 250, maxTargets: 5000 });
    const client = await connect(fed.url, "client");
    const nodes = await connect(coll.url, "nodes");
    const replies = collectReplies(client);
    startResponders(nodes, ["node1.example.net"]);
    let copies = 0;
    nodes.subscribe(`${COLLECTIVE}.node.>`, () => copies++);
    await Promise.all([client.flush(), nodes.flush()]);

    const targets = Array.from({ length: 5000 }, (_, i) => `${COLLECTIVE}.node.n${i}.example.net`);
    targets[4999] = `${COLLECTIVE}.node.node1.example.net`;
    const big = requestId();
    const small = requestId();
    publishRequest(client, federatedRequest(big, targets));
    publishRequest(client, federatedRequest(small, [`${COLLECTIVE}.node.node1.example.net`]));
    expect(await replies.waitFor(small, 1)).toEqual(["node1.example.net"]);
    expect(await replies.waitFor(big, 1)).toEqual(["node1.example.net"]);
    await eventually(() => (copies === 5001 ? true : undefined));
    // In-flight slots are released once a (lingering) flush confirms delivery.
    const doc = await eventually(() => {
      const d = running.broker.statsDocument();
      return d.federation.in_flight === 0 && d.collective.in_flight === 0 ? d : undefined;
    });
    expect(doc.collective.sent).toBe(5001);
    expect(doc.federation.sent).toBe(2);
    expect(doc.federation.in_flight).toBe(0);
  });

  it("drops messages while the egress side holds more unsent bytes than allowed", async () => {
    const [fed, coll] = await servers();
    const running = await broker(fed.url, coll.url, { maxPendingBytes: 1 });
    const client = await connect(fed.url, "client");
    for (let i = 0; i < 200; i++)
      publishRequest(client, federatedRequest(requestId(), [`${COLLECTIVE}.node.n${i}`]));
    await client.flush();
    const doc = await eventually(() => {
      const d = running.broker.statsDocument();
      return d.federation.received === 200 ? d : undefined;
    });
    expect(doc.dropped.overloaded).toBeGreaterThanOrEqual(1);
    expect(doc.collective.sent + doc.dropped.overloaded!).toBe(200);
  });

  it("drops what exceeds the in-flight limit, counting it as overloaded", async () => {
    const [fed, coll] = await servers();
    const running = await broker(fed.url, coll.url, { inFlight: 1, batchSize: 50 });
    const client = await connect(fed.url, "client");
    const targets = Array.from({ length: 2000 }, (_, i) => `${COLLECTIVE}.node.n${i}`);
    publishRequest(client, federatedRequest(requestId(), targets));
    for (let i = 0; i < 5; i++) publishRequest(client, federatedRequest(requestId(), [BROADCAST]));
    await client.flush();
    const doc = await eventually(() => {
      const d = running.broker.statsDocument();
      return d.federation.received === 6 && d.federation.in_flight === 0 ? d : undefined;
    });
    expect(doc.dropped.overloaded).toBeGreaterThanOrEqual(1);
    expect(doc.collective.sent).toBe(2000 + (5 - doc.dropped.overloaded!));
  });

  it("finishes a fan-out in flight when stopped, and takes no more work", async () => {
    const [fed, coll] = await servers();
    const running = await broker(fed.url, coll.url, { batchSize: 100 });
    const client = await connect(fed.url, "client");
    const nodes = await connect(coll.url, "nodes");
    let copies = 0;
    nodes.subscribe(`${COLLECTIVE}.node.>`, () => copies++);
    await nodes.flush();
    const targets = Array.from({ length: 3000 }, (_, i) => `${COLLECTIVE}.node.n${i}`);
    publishRequest(client, federatedRequest(requestId(), targets));
    await eventually(() => (running.broker.stats.inFlight("federation") === 1 ? true : undefined));
    await running.stop();
    await nodes.flush();
    expect(copies).toBe(3000);
    expect(running.broker.isStopped()).toBe(true);
    publishRequest(client, federatedRequest(requestId(), [`${COLLECTIVE}.node.n1`]));
    await client.flush();
    await sleep(100);
    expect(copies).toBe(3000);
  });

  it("carries a seed-dialect request and its replies in the seed dialect", async () => {
    const [fed, coll] = await servers();
    await broker(fed.url, coll.url);
    const client = await connect(fed.url, "client");
    const nodes = await connect(coll.url, "nodes");
    startResponders(nodes, NODES);
    const replies = collectReplies(client);
    await Promise.all([client.flush(), nodes.flush()]);
    const rid = requestId();
    const { protocol: _dropped, ...seed } = federatedRequest(rid, [BROADCAST]);
    publishRequest(client, { ...seed, headers: { ...seed.headers, "seen-by": ["client1"] } });
    expect((await replies.waitFor(rid, 3)).sort()).toEqual(NODES);
    expect(replies.packets).toHaveLength(3);
    for (const packet of replies.packets) {
      expect("protocol" in packet).toBe(false);
      expect(packet.headers.federation).toBeUndefined();
      expect(packet.headers["seen-by"]).toEqual([
        "client1",
        "fedbroker_C1_inproc",
        packet.headers.mc_sender,
        "fedbroker_C1_inproc",
      ]);
    }
  });
});
