import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import {
  type BrokerProcess,
  bus,
  COLLECTIVE,
  collectReplies,
  eventually,
  federatedRequest,
  httpStatus,
  httpText,
  metric,
  publishRequest,
  type ReplyLog,
  requestId,
  sleep,
  spawnBroker,
  startResponders,
  startTcpProxy,
  type TcpProxy,
} from "./support.ts";

const NODES = Array.from({ length: 6 }, (_, i) => `node${i + 1}.example.net`);
const BROADCAST = `${COLLECTIVE}.broadcast.agent.rpcutil`;

// Issue 12, finding 3: a broker whose federation side is down kept its collective-side queue subscription
// and dropped every reply handed to it. A broker holds each side's queue subscription only while it can
// publish to the other side.
describe("a broker cut off from one side", () => {
  let federationServer: NatsServer;
  let collectiveServer: NatsServer;
  let proxy: TcpProxy;
  let collectiveProxy: TcpProxy;
  let client: MessageBus;
  let nodes: MessageBus;
  let replies: ReplyLog;
  let brokers: BrokerProcess[] = [];
  let cutBroker: BrokerProcess;
  let cutCollectiveBroker: BrokerProcess;

  beforeAll(async () => {
    [federationServer, collectiveServer] = await Promise.all([
      startNatsServer({ name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    proxy = await startTcpProxy(federationServer.port);
    collectiveProxy = await startTcpProxy(collectiveServer.port);
    brokers = await Promise.all([
      spawnBroker("b1", federationServer.url, collectiveServer.url),
      spawnBroker("b2", federationServer.url, collectiveServer.url),
      spawnBroker("b3", proxy.url, collectiveServer.url),
      spawnBroker("b4", federationServer.url, collectiveProxy.url),
    ]);
    cutBroker = brokers[2]!;
    cutCollectiveBroker = brokers[3]!;
    client = await bus(federationServer.url, "test-client");
    nodes = await bus(collectiveServer.url, "test-nodes");
    startResponders(nodes, NODES);
    replies = collectReplies(client);
    await Promise.all([client.flush(), nodes.flush()]);
  }, 40_000);

  afterAll(async () => {
    await Promise.allSettled(brokers.map((b) => b.kill("SIGKILL")));
    await Promise.allSettled([client?.close(), nodes?.close(), proxy?.close(), collectiveProxy?.close()]);
    await Promise.allSettled([federationServer?.dispose(), collectiveServer?.dispose()]);
  });

  async function sendBroadcasts(count: number): Promise<string[]> {
    const rids: string[] = [];
    for (let i = 0; i < count; i++) {
      const rid = requestId();
      rids.push(rid);
      publishRequest(client, federatedRequest(rid, [BROADCAST]));
      await sleep(2);
    }
    return rids;
  }

  async function incomplete(rids: string[]): Promise<string[]> {
    await Promise.allSettled(rids.map((rid) => replies.waitFor(rid, NODES.length, 5000)));
    return rids.filter((rid) => (replies.byRequest.get(rid)?.length ?? 0) !== NODES.length);
  }

  const cutMetrics = async () => {
    const text = await httpText(`${cutBroker.httpUrl}/metrics`);
    return {
      repliesTaken: metric(text, "choria_federation_received_msgs", {
        name: "nats_ingest",
        connected_to: "collective",
      }),
      dropped: metric(text, "choria_edge_federation_dropped_msgs"),
    };
  };

  it("leaves the replies to the healthy brokers while cut, and takes work again once restored", async () => {
    // Every broker shares the work before the cut.
    expect(await incomplete(await sendBroadcasts(30))).toEqual([]);
    const before = await cutMetrics();
    expect(before.repliesTaken).toBeGreaterThan(0);

    proxy.cut();
    await eventually(async () => (await httpStatus(`${cutBroker.httpUrl}/readyz`)) === 503, 5000);
    await sleep(200);
    const duringCut = await sendBroadcasts(100);
    const lost = await incomplete(duringCut);
    const cut = await cutMetrics();
    console.log(
      `while cut: ${lost.length} of ${duringCut.length} requests partial; the cut broker took ` +
        `${cut.repliesTaken - before.repliesTaken} replies and dropped ${cut.dropped - before.dropped}`,
    );
    expect(lost.length, "requests with missing replies").toBe(0);
    expect(cut.repliesTaken - before.repliesTaken).toBe(0);
    expect(cut.dropped).toBe(before.dropped);

    proxy.restore();
    await eventually(async () => (await httpStatus(`${cutBroker.httpUrl}/readyz`)) === 200, 10_000);
    await sleep(200);
    expect(await incomplete(await sendBroadcasts(60))).toEqual([]);
    const after = await cutMetrics();
    expect(after.repliesTaken, "the restored broker takes replies again").toBeGreaterThan(cut.repliesTaken);
    expect(after.dropped).toBe(before.dropped);
    const requestsTaken = metric(
      await httpText(`${cutBroker.httpUrl}/metrics`),
      "choria_federation_received_msgs",
      {
        name: "nats_ingest",
        connected_to: "federation",
      },
    );
    expect(requestsTaken).toBeGreaterThan(0);
    for (const rid of [...duringCut]) {
      const got = replies.byRequest.get(rid) ?? [];
      expect(new Set(got).size).toBe(got.length);
    }
  }, 60_000);

  it("leaves the requests to the healthy brokers while its collective side is cut", async () => {
    const requestsTaken = async () =>
      metric(await httpText(`${cutCollectiveBroker.httpUrl}/metrics`), "choria_federation_received_msgs", {
        name: "nats_ingest",
        connected_to: "federation",
      });
    const before = await requestsTaken();
    collectiveProxy.cut();
    await eventually(async () => (await httpStatus(`${cutCollectiveBroker.httpUrl}/readyz`)) === 503, 5000);
    await sleep(200);
    const duringCut = await sendBroadcasts(100);
    const lost = await incomplete(duringCut);
    const taken = (await requestsTaken()) - before;
    console.log(
      `collective side cut: ${lost.length} of ${duringCut.length} requests partial, ${taken} taken by the cut broker`,
    );
    expect(lost.length, "requests with missing replies").toBe(0);
    expect(taken).toBe(0);

    collectiveProxy.restore();
    await eventually(async () => (await httpStatus(`${cutCollectiveBroker.httpUrl}/readyz`)) === 200, 10_000);
    await sleep(200);
    expect(await incomplete(await sendBroadcasts(60))).toEqual([]);
    expect(await requestsTaken(), "the restored broker takes requests again").toBeGreaterThan(before);
  }, 60_000);
});
