// The federation a gateway talks to, all real: a federation nats-server (with its websocket listener for
// the edge), a member-collective nats-server, a broker between them, and simulated member nodes that
// verify every request's signature and filter.
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type RunningBroker, startBroker } from "../../../functions/broker.ts";
import type { NodeGatewaySettings } from "../../../functions/gateway-env.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import { generateFleet, type NodeIdentity } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import {
  generateHttpKey,
  type KeyFile,
  type Policy,
  type SigningKey,
  signHttpRequest,
} from "../../../lib/security/http/mod.ts";
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
export async function startFederation(
  count: number,
  options: { seed?: number; federationConfig?: string; jetstream?: boolean } = {},
): Promise<Federation> {
  const pki = await testPki();
  const [federation, collective] = await Promise.all([
    startNatsServer({
      websocket: true,
      name: "federation",
      ...(options.jetstream ? { jetstream: true } : {}),
      ...(options.federationConfig ? { extraConfig: options.federationConfig } : {}),
    }),
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

export interface TestKeys {
  /** The keys document for the gateway. */
  json: string;
  /** ed25519, may do anything in cluster C1. */
  admin: SigningKey;
  /** ed25519, rpcutil only, at most 5 nodes, must name a filter. */
  narrow: SigningKey;
  /** A bearer token allowed broadcast mode. */
  token: SigningKey;
  /** ed25519, rpcutil only, and may read other keys' rpcutil jobs (readJobs: allowed). */
  auditor: SigningKey;
}

export async function testKeys(): Promise<TestKeys> {
  const everything: Policy = { clusters: [CLUSTER], collectives: ["*"], agents: ["*"], actions: ["*#*"] };
  const [admin, narrow, token, auditor] = await Promise.all([
    generateHttpKey({ id: "admin", caller: "ops", scheme: "ed25519", policy: everything }),
    generateHttpKey({
      id: "narrow",
      caller: "ci",
      scheme: "ed25519",
      policy: {
        ...everything,
        agents: ["rpcutil"],
        actions: ["rpcutil#*"],
        maxNodes: 5,
        requireFilter: true,
      },
    }),
    generateHttpKey({
      id: "token",
      caller: "webhook",
      scheme: "bearer",
      policy: { ...everything, allowBroadcast: true },
    }),
    generateHttpKey({
      id: "auditor",
      caller: "audit",
      scheme: "ed25519",
      policy: { ...everything, agents: ["rpcutil"], actions: ["rpcutil#*"], readJobs: "allowed" },
    }),
  ]);
  const signing = (file: KeyFile): SigningKey =>
    file.scheme === "bearer"
      ? { id: file.id, scheme: "bearer", secret: file.secret! }
      : { id: file.id, scheme: "ed25519", privateKey: file.privateKey! };
  return {
    json: JSON.stringify({ keys: [admin.config, narrow.config, token.config, auditor.config] }),
    admin: signing(admin.keyFile),
    narrow: signing(narrow.keyFile),
    token: signing(token.keyFile),
    auditor: signing(auditor.keyFile),
  };
}

/** A signed request as `fetch` arguments; the body is sent exactly as signed. */
export async function signedInit(
  url: string,
  body: unknown,
  key: SigningKey,
  headers: Record<string, string> = {},
): Promise<RequestInit> {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const signed = await signHttpRequest({
    method: "POST",
    url,
    headers: { "content-type": "application/json", ...headers },
    body: text,
    key,
  });
  return { method: "POST", headers: signed, body: text };
}

/** The stream's events, from an ndjson or SSE body. */
export function parseEvents(text: string, format: "ndjson" | "sse"): Record<string, unknown>[] {
  if (format === "ndjson")
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return text
    .split("\n\n")
    .filter(Boolean)
    .map((frame) => {
      const [event, data] = frame.split("\n");
      const parsed = JSON.parse(data!.slice("data: ".length)) as Record<string, unknown>;
      if (event !== `event: ${String(parsed.type)}`)
        throw new Error(`event line ${event} for ${String(parsed.type)}`);
      return parsed;
    });
}

/** An HTTP endpoint on 127.0.0.1 that records the completion callbacks it receives. */
export interface CallbackReceiver {
  url: string;
  /** Resolves with the deliveries whose body mentions `jobId`, once there is one (or after 10 s). */
  deliveriesFor(jobId: string): Promise<{ headers: Record<string, unknown>; body: string }[]>;
  close(): Promise<void>;
}

export async function startCallbackReceiver(): Promise<CallbackReceiver> {
  const delivered: { headers: Record<string, unknown>; body: string }[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      delivered.push({ headers: request.headers, body });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const forJob = (jobId: string) => delivered.filter((d) => d.body.includes(jobId));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jobs-done`,
    async deliveriesFor(jobId) {
      const deadline = Date.now() + 10_000;
      while (forJob(jobId).length === 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      return forJob(jobId);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Settings for a Node gateway on 127.0.0.1 (a free port) publishing into cluster C1 with the given keys,
 * signing with `cert` (default: the test PKI's privileged gateway certificate).
 */
export async function gatewaySettings(
  natsUrl: string,
  keysJson: string,
  cert?: { certPem: string; keyPem: string },
): Promise<NodeGatewaySettings> {
  const config = gatewayConfigFrom({ clusters: { [CLUSTER]: [COLLECTIVE] } });
  if (!config.ok) throw new Error(config.error);
  const { certPem, keyPem } = cert ?? (await testPki()).gateway;
  return {
    config: config.config,
    listen: { host: "127.0.0.1", port: 0 },
    natsServers: [natsUrl],
    natsAuth: { type: "none" },
    certPem,
    keyPem,
    keysJson,
    readyFile: undefined,
  };
}

export interface GatewayProcess {
  child: ChildProcess;
  /** What it has written to stderr so far: its log. */
  output(): string;
}

const CLI = join(import.meta.dirname, "../../../cli/main.ts");

/**
 * A `choria-edge gateway` process with these options, once it has written its ready file (`ready` in
 * `dir`); the caller kills it.
 */
export async function spawnGateway(
  options: string[],
  dir: string,
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const ready = join(dir, "ready");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CLI, "gateway", ...options, "--ready-file", ready],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...env, NODE_NO_WARNINGS: "1" },
    },
  );
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const deadline = Date.now() + 20_000;
  while (!(await readFile(ready, "utf8").catch(() => "")).startsWith("ready")) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`gateway did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, output: () => output };
}
