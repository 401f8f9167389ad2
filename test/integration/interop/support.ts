// A mixed federation for the interop tests: a federation nats-server and a member collective's, real
// go-choria servers and our simulated nodes side by side in one collective, federation brokers of either
// kind (ours in-process, go-choria's as processes), and optionally our gateway in front.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningBroker, startBroker } from "../../../functions/broker.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { type DemoPki, ensureDemoPki } from "../../../infra/pki.ts";
import { type ClientIdentity, signRpcRequest } from "../../../lib/client/request.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import type { NodeIdentity } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { nodeSubject, replySubject } from "../../../lib/protocol/subjects.ts";
import { encodeTransport, newTransportV1 } from "../../../lib/protocol/transport.ts";
import { collectReplies } from "../../../lib/results/collect-replies.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import type { MessageBus, NatsBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import {
  type ChoriaServer,
  type ServerSpec,
  startChoriaFederationBroker,
  startChoriaServer,
} from "../../support/choria.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { freePort } from "../../support/ports.ts";
import { gatewaySettings, signedInit, testKeys } from "../gateway/support.ts";

export const CLUSTER = "C1";
export const COLLECTIVE = "mcollective";

/** Real go-choria servers: facts and classes chosen so that every filter below splits both kinds. */
export const REAL: ServerSpec[] = [
  {
    identity: "go1.example.net",
    facts: { role: "web", country: "de", cores: 8, os: { family: "debian" } },
    classes: ["apache", "role::web"],
  },
  {
    identity: "go2.example.net",
    facts: { role: "db", country: "nl", cores: 2, os: { family: "redhat" } },
    classes: ["postgres", "role::db"],
  },
  {
    identity: "go3.example.net",
    facts: { role: "web", country: "nl", cores: 32, os: { family: "debian" } },
    classes: ["apache", "nginx"],
  },
];

/** Simulated nodes in the same collective, with the same kinds of facts. */
export const SIMULATED: NodeIdentity[] = [
  {
    identity: "sim1.example.net",
    facts: { role: "web", country: "de", cores: 4, os: { family: "debian" } },
    classes: ["apache"],
  },
  {
    identity: "sim2.example.net",
    facts: { role: "db", country: "de", cores: 16, os: { family: "redhat" } },
    classes: ["postgres", "role::db"],
  },
  {
    identity: "sim3.example.net",
    facts: { role: "web", country: "nl", cores: 64, os: { family: "debian" } },
    classes: ["nginx"],
  },
  {
    identity: "sim4.example.net",
    facts: { role: "cache", country: "uk", cores: 1, os: { family: "alpine" } },
    classes: [],
  },
].map((node) => ({ ...node, collective: COLLECTIVE, agents: ["rpcutil", "discovery"] }));

export const ALL = [...REAL.map((s) => s.identity), ...SIMULATED.map((n) => n.identity)].sort();

/** Certificates for every real peer, from a CA made for this run. */
export async function interopPki(dir: string): Promise<DemoPki> {
  return ensureDemoPki(join(dir, "pki"), {
    nodes: [...REAL.map((s) => s.identity), "fedbroker1.example.net", "fedbroker2.example.net"],
  });
}

export interface Stack {
  dir: string;
  pki: DemoPki;
  federation: NatsServer;
  collective: NatsServer;
  servers: ChoriaServer[];
  nodes: NodeService;
  /** Our broker workers, in this process. */
  brokers: RunningBroker[];
  /** go-choria federation brokers, with the URL of their Prometheus listener. */
  goBrokers: { stop(): Promise<void>; metricsUrl: string }[];
  /** Our client, connected to the federation side. */
  client: NatsBus;
  identity: ClientIdentity;
  stop(): Promise<void>;
}

export interface StackOptions {
  ourBrokers?: number;
  goBrokers?: number;
  /** nats-server program for both servers (default: Debian's). */
  natsBinary?: string;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), "choria-interop-"));
  const pki = await interopPki(dir);
  const natsBinary = options.natsBinary ? { binary: options.natsBinary } : {};
  const [federation, collective] = await Promise.all([
    startNatsServer({ name: "federation", websocket: true, jetstream: true, ...natsBinary }),
    startNatsServer({ name: "collective", ...natsBinary }),
  ]);
  const stoppers: (() => Promise<unknown>)[] = [
    () => Promise.all([federation.dispose(), collective.dispose()]),
  ];
  const stop = async () => {
    for (const stopOne of stoppers.reverse()) await stopOne().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const servers = await Promise.all(
      REAL.map((spec) => startChoriaServer(spec, { natsUrl: collective.url, pki })),
    );
    stoppers.push(() => Promise.all(servers.map((s) => s.stop())));

    const nodesBus = await connectNats({ servers: collective.url, name: "interop-nodes", timeoutMs: 2000 });
    const nodes = serveNodes(
      nodesBus,
      new NodeHost({ fleet: SIMULATED, trust: TrustStore.fromPem(pki.ca.certPem) }),
    );
    await nodesBus.flush();
    stoppers.push(async () => {
      await nodes.stop();
      await nodesBus.close();
    });

    const brokers: RunningBroker[] = [];
    for (let i = 1; i <= (options.ourBrokers ?? 0); i++) {
      const broker = await startOurBroker({ federation, collective }, `ours${i}`);
      brokers.push(broker);
      stoppers.push(() => broker.stop());
    }

    const goBrokers: Stack["goBrokers"] = [];
    for (let i = 1; i <= (options.goBrokers ?? 0); i++) {
      const statsPort = await freePort();
      const broker = await startChoriaFederationBroker({
        cluster: CLUSTER,
        federationUrl: federation.url,
        collectiveUrl: collective.url,
        pki,
        identity: `fedbroker${i}.example.net`,
        statsPort,
      });
      goBrokers.push({
        stop: () => broker.stop(),
        metricsUrl: `http://127.0.0.1:${statsPort}/choria/prometheus`,
      });
      stoppers.push(() => broker.stop());
    }

    const client = await connectNats({ servers: federation.url, name: "interop-client", timeoutMs: 2000 });
    stoppers.push(() => client.close());
    const identity: ClientIdentity = {
      signer: await loadSigner(pki.client),
      callerid: `choria=${pki.client.certname}`,
      senderid: "interop-client.example.net",
    };
    await untilEveryNodeAnswers(collective.url, identity);
    return { dir, pki, federation, collective, servers, nodes, brokers, goBrokers, client, identity, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Directed rpcutil pings, straight on the member collective with our client library, until every real
 * and simulated node has answered one: the peers log their subscriptions a moment before the server has
 * them, so this is what "started" means here.
 */
async function untilEveryNodeAnswers(collectiveUrl: string, identity: ClientIdentity): Promise<void> {
  const bus = await connectNats({ servers: collectiveUrl, name: "interop-ready", timeoutMs: 2000 });
  try {
    const waiting = new Set(ALL);
    const deadline = Date.now() + 20_000;
    while (waiting.size > 0) {
      if (Date.now() > deadline) throw new Error(`no answer from ${[...waiting].join(", ")}`);
      await Promise.all(
        [...waiting].map(async (target) => {
          if ((await directPing(bus, identity, target, 500)) === "ok") waiting.delete(target);
        }),
      );
    }
  } finally {
    await bus.close();
  }
}

/** One signed, hash-checked rpcutil#ping to one node on its collective; "ok" when it answered 0. */
export async function directPing(
  bus: MessageBus,
  identity: ClientIdentity,
  target: string,
  timeoutMs: number,
): Promise<"ok" | "no_reply" | "failed"> {
  const signed = await signRpcRequest(identity, {
    collective: COLLECTIVE,
    agent: "rpcutil",
    action: "ping",
    filter: { identity: [target] },
  });
  const inbox = replySubject(COLLECTIVE, identity.callerid, signed.request.envelope.requestid);
  const collection = collectReplies(bus, inbox, signed.request.envelope.requestid, {
    expected: 1,
    timeoutMs,
  });
  await collection.ready;
  bus.publish(
    nodeSubject(COLLECTIVE, target),
    encodeTransport(newTransportV1({ data: signed.data, replyTo: inbox, sender: identity.senderid })),
  );
  const result = await collection.result;
  if (result.replies.length === 0) return "no_reply";
  return result.replies[0]?.rpc?.statuscode === 0 ? "ok" : "failed";
}

export interface InteropGateway {
  gateway: RunningGateway;
  keys: Awaited<ReturnType<typeof testKeys>>;
}

/**
 * Our Node gateway on the stack's federation side, publishing into cluster C1; with `jobs`, async
 * requests and `triggers` (a collector must run), signed callers sign URLs under `publicUrl`.
 */
export async function startInteropGateway(
  stack: Pick<Stack, "federation" | "pki">,
  options: { jobs?: boolean; triggers?: string; publicUrl?: string; dialect?: "v1" | "seed" } = {},
): Promise<InteropGateway> {
  const keys = await testKeys();
  const config = gatewayConfigFrom({
    clusters: { [CLUSTER]: [COLLECTIVE] },
    dialects: { [CLUSTER]: options.dialect ?? "v1" },
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
  });
  if (!config.ok) throw new Error(config.error);
  const gateway = await startGateway(
    {
      ...(await gatewaySettings(stack.federation.url, keys.json, stack.pki.gateway)),
      config: config.config,
      jobs: options.jobs ?? false,
      ...(options.triggers ? { triggers: { text: options.triggers, filename: "interop.yaml" } } : {}),
    },
    { log: () => {}, audit: () => {} },
  );
  return { gateway, keys };
}

/** One of our broker workers, in this process, between the stack's two servers. */
export async function startOurBroker(
  stack: Pick<Stack, "federation" | "collective">,
  instance: string,
  cluster = CLUSTER,
): Promise<RunningBroker> {
  const parsed = brokerConfigFrom({
    cluster,
    instance,
    identity: `${instance}.example.net`,
    collectives: [COLLECTIVE],
    metricsListen: "off",
    federation: { servers: [stack.federation.url] },
    collective: { servers: [stack.collective.url] },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  return startBroker(parsed.config, { log: () => {} });
}

export interface RpcAnswer {
  summary: Record<string, unknown>;
  replies: { identity: string; statuscode: number; statusmsg: string; data: Record<string, unknown> }[];
  no_reply: string[];
  unexpected: string[];
}

/** A signed POST /v1/rpc into cluster C1 with short timeouts; anything but 200 throws with the problem. */
export async function rpc(edge: InteropGateway, body: Record<string, unknown>): Promise<RpcAnswer> {
  const url = `${edge.gateway.url}/v1/rpc`;
  const res = await fetch(
    url,
    await signedInit(url, { cluster: CLUSTER, discovery_timeout: 1, timeout: 5, ...body }, edge.keys.admin),
  );
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${res.status}: ${text}`);
  return JSON.parse(text) as RpcAnswer;
}
