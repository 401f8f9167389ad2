// Every service of the pipeline on a running test topology, in this process, each connected as its own
// role: simulated nodes on dc1's member cluster, two dc1 brokers, a collector (R3), and the Node gateway
// (jobs on, R3 buckets), with one HTTP key whose caller id the topology's permissions were made for.
import { type RunningBroker, startBroker } from "../../../functions/broker.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
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
import { memoryLog } from "../results/support.ts";
import { eventually, roleAuth, roleBus, roleTls, startTestTopology, type TestTopology } from "./support.ts";

const PUBLIC = "https://gateway.example.com";

export interface Pipeline {
  topo: TestTopology;
  gateway: RunningGateway;
  brokers: RunningBroker[];
  collector: RunningCollector;
  nodesBus: NatsBus;
  nodes: NodeService;
  /** The simulated identities, sorted. */
  identities: string[];
  gatewayLog: string[];
  collectorLog: string[];
  /** A signed POST /v1/rpc to cluster dc1 (unless the body names another). */
  post(body: Record<string, unknown>): Promise<Response>;
  /** A signed GET /v1/jobs/<id>: the answer's status and body. */
  getJob(id: string): Promise<{ status: number; body: JobAnswer }>;
  /** The same, as the raw response. */
  fetchJob(id: string): Promise<Response>;
  stop(): Promise<void>;
}

export interface JobAnswer {
  job: { state: string; counts: Record<string, number> };
  results: { identity: string; status: string }[];
}

/** An async rpcutil ping of every node, followed until it is no longer running: its id and last view. */
export async function settledAsyncPing(
  pipeline: Pipeline,
  timeoutMs = 20_000,
): Promise<{ id: string; answer: JobAnswer }> {
  const response = await pipeline.post({
    agent: "rpcutil",
    action: "ping",
    nodes: pipeline.identities,
    mode: "async",
    timeout: 10,
  });
  if (response.status !== 202) throw new Error(`async ping: ${response.status} ${await response.text()}`);
  const { job_id: id } = (await response.json()) as { job_id: string };
  let answer: JobAnswer | undefined;
  await eventually(
    `job ${id} settled`,
    async () => {
      answer = (await pipeline.getJob(id)).body;
      return answer.job !== undefined && answer.job.state !== "running";
    },
    timeoutMs,
  );
  return { id, answer: answer! };
}

export async function startPipeline(options: {
  nodes: number;
  binary?: string;
  /** In-process dc1 brokers to start (2 by default); a test that kills brokers runs its own processes. */
  brokers?: number;
}): Promise<Pipeline> {
  const generated = await generateHttpKey({
    id: "ops",
    caller: "ops",
    scheme: "ed25519",
    policy: { clusters: ["dc1", "dc2"], collectives: ["*"], agents: ["*"], actions: ["*#*"] },
  });
  const key: SigningKey = { id: "ops", scheme: "ed25519", privateKey: generated.keyFile.privateKey! };
  const keysJson = JSON.stringify({ keys: [generated.config] });
  // The gateway may read the replies of exactly the caller ids its keys sign for.
  const registry = await KeyRegistry.fromConfig(JSON.parse(keysJson));
  const topo = await startTestTopology({
    gatewayCallerIds: [registry.get("ops")!.callerId],
    ...(options.binary ? { binary: options.binary } : {}),
  });
  const stops: (() => Promise<void>)[] = [() => topo.dispose()];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => {});
  };
  try {
    const { topology } = topo;
    const roles = topology.roles;
    const dc1 = topology.members.find((m) => m.cluster === "dc1")!;
    const fleet = generateFleet({ count: options.nodes, seed: 11 });

    const nodesBus = await roleBus(topology, roles.nodes.mcollective!, dc1.urls, "nodes-dc1");
    stops.push(() => nodesBus.close());
    const nodes = serveNodes(
      nodesBus,
      new NodeHost({ fleet, trust: TrustStore.fromPem(topology.choria.ca.certPem) }),
    );
    stops.push(() => nodes.stop());
    await nodesBus.flush();

    const brokers: RunningBroker[] = [];
    for (const instance of ["b1", "b2"].slice(0, options.brokers ?? 2)) {
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
        connectTimeoutMs: 2000,
        federation: side(topology.federation.urls),
        collective: side(dc1.urls),
      });
      if (!parsed.ok) throw new Error(parsed.error);
      const broker = await startBroker(parsed.config, { log: () => {} });
      brokers.push(broker);
      stops.push(() => broker.stop());
    }

    const collectorLog = memoryLog();
    const collectorConfig = collectorConfigFrom({
      servers: topology.federation.urls,
      auth: roleAuth(roles.collector),
      tls: roleTls(topology, roles.collector),
      inboxPrefix: roles.collector.inboxPrefix,
      name: "collector-ha",
      replicas: 3,
      retentionMs: 3_600_000,
      sweepIntervalMs: 100,
      connectTimeoutMs: 2000,
    });
    if (!collectorConfig.ok) throw new Error(collectorConfig.error);
    const collector = await startCollector(collectorConfig.config, { log: collectorLog });
    stops.push(() => collector.stop());

    const gatewayLog = memoryLog();
    const config = gatewayConfigFrom({ clusters: { dc1: ["mcollective"], dc2: ["dc2"] }, publicUrl: PUBLIC });
    if (!config.ok) throw new Error(config.error);
    const gateway = await startGateway(
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
    stops.push(() => gateway.close());
    const fetchJob = async (id: string) => {
      const path = `/v1/jobs/${id}`;
      const headers = await signHttpRequest({ method: "GET", url: `${PUBLIC}${path}`, headers: {}, key });
      return fetch(`${gateway.url}${path}`, { headers });
    };

    return {
      topo,
      gateway,
      brokers,
      collector,
      nodesBus,
      nodes,
      identities: fleet.map((n) => n.identity).sort(),
      gatewayLog: gatewayLog.lines,
      collectorLog: collectorLog.lines,
      async post(body) {
        const text = JSON.stringify({ cluster: "dc1", ...body });
        const headers = await signHttpRequest({
          method: "POST",
          url: `${PUBLIC}/v1/rpc`,
          headers: { "content-type": "application/json" },
          body: text,
          key,
        });
        return fetch(`${gateway.url}/v1/rpc`, { method: "POST", headers, body: text });
      },
      fetchJob,
      async getJob(id) {
        const response = await fetchJob(id);
        return { status: response.status, body: (await response.json()) as JobAnswer };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Log lines with `message`, their fields parsed. */
export function logged(lines: string[], message: string): Record<string, unknown>[] {
  return lines
    .filter((line) => line.includes(` ${message} `))
    .map((line) => JSON.parse(line.slice(line.indexOf("{"))) as Record<string, unknown>);
}

/** One sync request's fate: when it was asked and answered, and how. */
export interface SyncOutcome {
  at: number;
  end: number;
  /** `full` (every node answered), `partial`, the HTTP status of a refusal, or `error: ...`. */
  kind: string;
}

/** A sync rpcutil ping of every node with `timeout` seconds. */
export async function syncPing(pipeline: Pipeline, timeout: number): Promise<SyncOutcome> {
  const at = Date.now();
  try {
    const response = await pipeline.post({
      agent: "rpcutil",
      action: "ping",
      nodes: pipeline.identities,
      timeout,
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      return { at, end: Date.now(), kind: String(response.status) };
    }
    const answer = (await response.json()) as { summary: { ok: number } };
    const full = answer.summary.ok === pipeline.identities.length;
    return { at, end: Date.now(), kind: full ? "full" : "partial" };
  } catch (err) {
    return { at, end: Date.now(), kind: `error: ${String(err)}` };
  }
}

/** How many outcomes of each kind, as JSON for a report line. */
export function tally(list: readonly { kind: string }[]): string {
  const counts: Record<string, number> = {};
  for (const o of list) counts[o.kind] = (counts[o.kind] ?? 0) + 1;
  return JSON.stringify(counts);
}
