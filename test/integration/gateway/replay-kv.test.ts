import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeGatewaySettings } from "../../../functions/gateway-env.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { signedInit, type TestKeys, testKeys } from "./support.ts";

// Callers sign the URL they see; behind a load balancer that is one public origin for every instance.
const PUBLIC = "https://gateway.example.com";

let server: NatsServer;
let keys: TestKeys;
const gateways: RunningGateway[] = [];

async function settings(replayStore: "memory" | "kv"): Promise<NodeGatewaySettings> {
  const pki = await testPki();
  const config = gatewayConfigFrom({ clusters: { C1: ["mcollective"] }, publicUrl: PUBLIC });
  if (!config.ok) throw new Error(config.error);
  return {
    config: config.config,
    listen: { host: "127.0.0.1", port: 0 },
    natsServers: [server.url],
    natsAuth: { type: "none" },
    certPem: pki.gateway.certPem,
    keyPem: pki.gateway.keyPem,
    keysJson: keys.json,
    replayStore,
    readyFile: undefined,
  };
}

async function pair(replayStore: "memory" | "kv"): Promise<[RunningGateway, RunningGateway]> {
  const started = await Promise.all(
    [0, 1].map(async () => startGateway(await settings(replayStore), { log: () => {}, audit: () => {} })),
  );
  gateways.push(...started);
  return [started[0]!, started[1]!];
}

beforeAll(async () => {
  [server, keys] = await Promise.all([startNatsServer({ jetstream: true }), testKeys()]);
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((g) => g.close()));
  await server?.dispose();
});

/** One signed request, sent as-is to each gateway in turn; returns each answer's problem type. */
async function sendToBoth(a: RunningGateway, b: RunningGateway): Promise<string[]> {
  // An unknown cluster is refused after authentication has claimed the nonce, without any NATS round trip.
  const init = await signedInit(
    `${PUBLIC}/v1/rpc`,
    { agent: "rpcutil", action: "ping", cluster: "nowhere" },
    keys.admin,
  );
  const types: string[] = [];
  for (const gateway of [a, b]) {
    const response = await fetch(`${gateway.url}/v1/rpc`, init);
    types.push(((await response.json()) as { type: string }).type);
  }
  return types;
}

describe("replay protection across gateway instances", () => {
  it("with the KV store, a request accepted by one instance is refused as a replay by another", async () => {
    const [a, b] = await pair("kv");
    expect(await sendToBoth(a, b)).toEqual([`${PROBLEM_BASE}unknown-cluster`, `${PROBLEM_BASE}replay`]);
  });

  it("with memory stores each instance only knows its own requests (why kv exists)", async () => {
    const [a, b] = await pair("memory");
    expect(await sendToBoth(a, b)).toEqual([
      `${PROBLEM_BASE}unknown-cluster`,
      `${PROBLEM_BASE}unknown-cluster`,
    ]);
  });
});
