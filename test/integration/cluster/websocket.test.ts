// The connection a Worker gateway makes (lib/transport/websocket.ts): wss to the federation cluster's
// websocket listeners, trusting the topology's CA, logged in with the gateway role's nkey and using its
// inbox prefix, which the servers' permissions require for every JetStream answer. Node 20 has no global
// WebSocket, so the test lends it undici's, with a dispatcher that trusts the topology's CA.
import { readFile } from "node:fs/promises";
import { Agent, getGlobalDispatcher, setGlobalDispatcher, WebSocket } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { connectWebSocket, NatsKvBucket } from "../../../lib/transport/mod.ts";
import { clusterNatsServer, roleAuth, startTestTopology, type TestTopology } from "./support.ts";

let topo: TestTopology;
const previous = getGlobalDispatcher();
const buses: NatsBus[] = [];

beforeAll(async () => {
  const binary = clusterNatsServer();
  topo = await startTestTopology({ gatewayCallerIds: ["ops"], ...(binary ? { binary } : {}) });
  setGlobalDispatcher(new Agent({ connect: { ca: await readFile(topo.topology.caFile, "utf8") } }));
  (globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;
}, 60_000);

afterAll(async () => {
  for (const bus of buses) await bus.close().catch(() => {});
  delete (globalThis as { WebSocket?: unknown }).WebSocket;
  setGlobalDispatcher(previous);
  await topo?.dispose();
});

async function gatewayOverWss(inboxPrefix: string | undefined): Promise<NatsBus> {
  const { topology } = topo;
  const bus = await connectWebSocket({
    servers: topology.federation.wsUrls,
    name: "gateway-wss",
    auth: roleAuth(topology.roles.gateway),
    timeoutMs: 5000,
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
  buses.push(bus);
  return bus;
}

it("opens the R3 jobs bucket over wss with the gateway's nkey and inbox prefix", async () => {
  const { topology } = topo;
  const bus = await gatewayOverWss(topology.roles.gateway.inboxPrefix);
  expect(bus.connectedUrl()).toMatch(/^wss:\/\/127\.0\.0\.1:/);
  const bucket = await NatsKvBucket.open(bus.connection, {
    name: topology.buckets.jobs,
    ttlMs: 60_000,
    replicas: 3,
  });
  expect((await bucket.replication()).replicas).toBe(3);
  const revision = await bucket.put("probe", "over websocket");
  expect((await bucket.get("probe"))?.revision).toBe(revision);
}, 30_000);

it("without the inbox prefix the servers refuse the JetStream answers", async () => {
  const bus = await gatewayOverWss(undefined);
  await expect(
    NatsKvBucket.open(bus.connection, { name: topo.topology.buckets.data, ttlMs: 0, replicas: 3 }),
  ).rejects.toThrow(/Permissions Violation/);
}, 30_000);
