// The federation a gateway talks to, all real: a federation nats-server (with its websocket listener for
// the edge), a member-collective nats-server, a broker between them, and simulated member nodes that
// verify every request's signature and filter.
import { type RunningBroker, startBroker } from "../../../functions/broker.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import { generateFleet, type NodeIdentity } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";

export const CLUSTER = "C1";
export const COLLECTIVE = "mcollective";

export interface Federation {
  federation: NatsServer;
  collective: NatsServer;
  broker: RunningBroker;
  fleet: NodeIdentity[];
  nodes: NodeService;
  stop(): Promise<void>;
}

/** Starts the whole federation with `count` simulated nodes; stop() tears it down in reverse. */
export async function startFederation(count: number, options: { seed?: number } = {}): Promise<Federation> {
  const pki = await testPki();
  const [federation, collective] = await Promise.all([
    startNatsServer({ websocket: true, name: "federation" }),
    startNatsServer({ name: "collective" }),
  ]);
  const parsed = brokerConfigFrom({
    cluster: CLUSTER,
    instance: "b1",
    identity: "broker1.example.net",
    collectives: [COLLECTIVE],
    metricsListen: "off",
    federation: { servers: [federation.url] },
    collective: { servers: [collective.url] },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  const broker = await startBroker(parsed.config, { log: () => {} });
  const fleet = generateFleet({ count, seed: options.seed ?? 7 });
  const nodesBus: MessageBus = await connectNats({ servers: collective.url, name: "nodes", timeoutMs: 2000 });
  const nodes = serveNodes(nodesBus, new NodeHost({ fleet, trust: TrustStore.fromPem(pki.caPem) }));
  await nodesBus.flush();
  return {
    federation,
    collective,
    broker,
    fleet,
    nodes,
    async stop() {
      await nodes.stop().catch(() => {});
      await nodesBus.close().catch(() => {});
      await broker.stop().catch(() => {});
      await Promise.all([federation.dispose(), collective.dispose()]);
    },
  };
}
