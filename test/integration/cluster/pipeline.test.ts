// The whole pipeline on the production-shaped topology: the gateway, two brokers of cluster dc1, the
// collector and simulated member nodes, each connected as its own least-privileged role over TLS to
// three-server clusters (every process on a server list, not one server). A sync request is answered by
// every node; an async job lands in the jobs bucket, which the collector and gateway made with three
// replicas and said so in their logs. A client with a certificate from another CA is turned away.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "../../../functions/broker.ts";
import { type RunningCollector, startCollector } from "../../../functions/collector.ts";
import { gatewayConfigFrom } from "../../../functions/gateway/config.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { createCertificateAuthority, issueCertificate } from "../../../infra/pki.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import { generateFleet } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { collectorConfigFrom } from "../../../lib/results/jobs/config.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import {
  generateHttpKey,
  KeyRegistry,
  type SigningKey,
  signHttpRequest,
} from "../../../lib/security/http/mod.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { streamReplication } from "../../../lib/transport/kv-bucket.ts";
import { memoryLog } from "../results/support.ts";
import {
  clusterLog,
  eventually,
  rawConnection,
  roleAuth,
  roleBus,
  roleTls,
  startTestTopology,
  type TestTopology,
} from "./support.ts";

const PUBLIC = "https://gateway.example.com";
const NODES = 20;

let topo: TestTopology;
let key: SigningKey;
let gateway: RunningGateway;
const brokers: RunningBroker[] = [];
let collector: RunningCollector;
let nodesBus: NatsBus;
let nodes: NodeService;
const gatewayLog = memoryLog();
const collectorLog = memoryLog();
const fleet = generateFleet({ count: NODES, seed: 11 });

beforeAll(async () => {
  const generated = await generateHttpKey({
    id: "ops",
    caller: "ops",
    scheme: "ed25519",
    policy: { clusters: ["dc1", "dc2"], collectives: ["*"], agents: ["*"], actions: ["*#*"] },
  });
  key = { id: "ops", scheme: "ed25519", privateKey: generated.keyFile.privateKey! };
  const keysJson = JSON.stringify({ keys: [generated.config] });
  // The gateway may read the replies of exactly the caller ids its keys sign for.
  const registry = await KeyRegistry.fromConfig(JSON.parse(keysJson));
  topo = await startTestTopology({ gatewayCallerIds: [registry.get("ops")!.callerId] });
  const { topology } = topo;
  const roles = topology.roles;
  const dc1 = topology.members.find((m) => m.cluster === "dc1")!;

  nodesBus = await roleBus(topology, roles.nodes.mcollective!, dc1.urls, "nodes-dc1");
  nodes = serveNodes(
    nodesBus,
    new NodeHost({ fleet, trust: TrustStore.fromPem(topology.choria.ca.certPem) }),
  );
  await nodesBus.flush();

  for (const instance of ["b1", "b2"]) {
    const side = (servers: string[]) => ({
      servers,
      auth: roleAuth(roles.brokers.dc1!),
      tls: roleTls(topology, roles.brokers.dc1!),
    });
    const parsed = brokerConfigFrom({
      cluster: "dc1",
      instance,
      identity: `broker-${instance}.dc1.example.net`,
      collectives: ["mcollective"],
      metricsListen: "off",
      federation: side(topology.federation.urls),
      collective: side(dc1.urls),
    });
    if (!parsed.ok) throw new Error(parsed.error);
    brokers.push(await startBroker(parsed.config, { log: () => {} }));
  }

  const collectorConfig = collectorConfigFrom({
    servers: topology.federation.urls,
    auth: roleAuth(roles.collector),
    tls: roleTls(topology, roles.collector),
    name: "collector-ha",
    replicas: 3,
    retentionMs: 3_600_000,
    sweepIntervalMs: 100,
  });
  if (!collectorConfig.ok) throw new Error(collectorConfig.error);
  collector = await startCollector(collectorConfig.config, { log: collectorLog });

  const config = gatewayConfigFrom({ clusters: { dc1: ["mcollective"], dc2: ["dc2"] }, publicUrl: PUBLIC });
  if (!config.ok) throw new Error(config.error);
  gateway = await startGateway(
    {
      config: config.config,
      listen: { host: "127.0.0.1", port: 0 },
      natsServers: topology.federation.urls,
      natsAuth: roleAuth(roles.gateway),
      natsTls: roleTls(topology, roles.gateway),
      natsInboxPrefix: roles.gateway.inboxPrefix!,
      replicas: 3,
      certPem: topology.choria.gateway.certPem,
      keyPem: topology.choria.gateway.keyPem,
      keysJson,
      jobs: true,
      readyFile: undefined,
    },
    { log: gatewayLog, audit: () => {} },
  );
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await collector?.stop();
  await Promise.all(brokers.map((b) => b.stop()));
  await nodes?.stop();
  await nodesBus?.close();
  await topo?.dispose();
});

async function post(body: Record<string, unknown>) {
  const text = JSON.stringify({ cluster: "dc1", ...body });
  const headers = await signHttpRequest({
    method: "POST",
    url: `${PUBLIC}/v1/rpc`,
    headers: { "content-type": "application/json" },
    body: text,
    key,
  });
  return fetch(`${gateway.url}/v1/rpc`, { method: "POST", headers, body: text });
}

async function getJob(id: string) {
  const path = `/v1/jobs/${id}`;
  const headers = await signHttpRequest({ method: "GET", url: `${PUBLIC}${path}`, headers: {}, key });
  const response = await fetch(`${gateway.url}${path}`, { headers });
  expect(response.status).toBe(200);
  return (await response.json()) as { job: { state: string; counts: Record<string, number> } };
}

const identities = fleet.map((n) => n.identity).sort();

describe("the pipeline on three-server clusters over TLS", () => {
  it("answers a sync request from every node through two brokers", async () => {
    const response = await post({ agent: "rpcutil", action: "ping" });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as {
      summary: { discovered: number; ok: number };
      replies: { identity: string }[];
    };
    expect(answer.summary).toMatchObject({ discovered: NODES, ok: NODES });
    expect(answer.replies.map((r) => r.identity).sort()).toEqual(identities);
  });

  it("stores an async job in the R3 jobs bucket, and both processes log the replication they got", async () => {
    const response = await post({
      agent: "rpcutil",
      action: "ping",
      nodes: identities,
      mode: "async",
      timeout: 10,
    });
    expect(response.status).toBe(202);
    const { job_id } = (await response.json()) as { job_id: string };
    let job = await getJob(job_id);
    await eventually(
      "job complete",
      async () => {
        job = await getJob(job_id);
        return job.job.state !== "running";
      },
      15_000,
    );
    expect(job.job.state).toBe("complete");
    expect(job.job.counts).toMatchObject({ ok: NODES, failed: 0, no_reply: 0 });

    // Asked of the servers as the collector, whose permissions cover these streams.
    const nc = await rawConnection(
      topo.topology,
      topo.topology.roles.collector,
      topo.topology.federation.urls,
      "check",
    );
    try {
      const jsm = await jetstreamManager(nc);
      for (const stream of [`KV_${topo.topology.buckets.jobs}`, "CHORIA_EDGE_REPLIES"]) {
        const replication = await streamReplication(jsm, stream);
        expect(replication.replicas, stream).toBe(3);
        expect(replication.leader, stream).toMatch(/^fed-[123]$/);
      }
    } finally {
      await nc.close();
    }
    const logged = (lines: string[], message: string) =>
      lines.filter((line) => line.includes(message)).map((line) => JSON.parse(line.slice(line.indexOf("{"))));
    expect(logged(collectorLog.lines, "reply stream ready")).toEqual([
      expect.objectContaining({ stream: "CHORIA_EDGE_REPLIES", replicas: 3, replicas_requested: 3 }),
    ]);
    expect(logged(gatewayLog.lines, "kv bucket opened")).toContainEqual(
      expect.objectContaining({ bucket: topo.topology.buckets.jobs, replicas: 3, replicas_requested: 3 }),
    );
  });

  it("turns away a client whose certificate comes from another CA, before any NATS protocol", async () => {
    const dir = await mkdtemp(join(tmpdir(), "choria-edge-stranger-"));
    try {
      const stranger = await createCertificateAuthority("somebody else's CA");
      const cert = await issueCertificate(stranger, "gateway.nats.choria-edge");
      await writeFile(join(dir, "cert.pem"), cert.certPem);
      await writeFile(join(dir, "key.pem"), cert.keyPem);
      const url = topo.topology.federation.urls[0]!;
      await expect(
        connect({
          servers: [url],
          timeout: 3000,
          reconnect: false,
          // Trusts the right CA and even holds the gateway's nkey: only the certificate is wrong.
          tls: {
            caFile: topo.topology.caFile,
            certFile: join(dir, "cert.pem"),
            keyFile: join(dir, "key.pem"),
          },
          authenticator: nkeyAuthenticator(new TextEncoder().encode(topo.topology.roles.gateway.seed)),
        }),
      ).rejects.toThrow();
      await eventually("the server's log of the refused handshake", async () =>
        /TLS handshake error: .*(unknown authority|bad certificate)/.test(
          await clusterLog(topo.topology, "fed"),
        ),
      );
      // And with no certificate at all.
      await expect(
        connect({ servers: [url], timeout: 3000, reconnect: false, tls: { caFile: topo.topology.caFile } }),
      ).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
