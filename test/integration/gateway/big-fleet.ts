// A fleet of thousands of simulated nodes in their own process (restartable, so that each run can meet a
// cold one) behind two brokers, and a Node gateway in front: what the 10,000-node discovery test and
// benchmark run against.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningBroker, startBroker } from "../../../functions/broker.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import type { SigningKey } from "../../../lib/security/http/mod.ts";
import { spawnReady, stopChild } from "../../bench/support/processes.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { CLUSTER, COLLECTIVE, signedInit, type TestKeys, testKeys } from "./support.ts";

const PUBLIC = "https://gateway.example.com";
const ROOT = join(import.meta.dirname, "../../..");

export interface BigFleet {
  gateway: RunningGateway;
  brokers: RunningBroker[];
  keys: TestKeys;
  /** The NATS URLs: the federation (gateway, brokers' front) and the collective (brokers' back, nodes). */
  urls: { federation: string; collective: string };
  /** A signed POST /v1/rpc to the fleet's cluster, as `admin` unless another key is given. */
  post(body: Record<string, unknown>, key?: SigningKey): Promise<Response>;
  /** The simulator process's id, for its CPU time. */
  simulatorPid(): number | undefined;
  /** Stops the simulator process and starts a fresh one: the next request meets a cold fleet. */
  restartNodes(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBigFleet(nodes: number): Promise<BigFleet> {
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-big-fleet-"));
  const pki = await testPki();
  const caPath = join(dir, "ca.pem");
  await writeFile(caPath, pki.caPem);
  const servers: NatsServer[] = [];
  const brokers: RunningBroker[] = [];
  let simulator: ChildProcess | undefined;
  let gateway: RunningGateway | undefined;
  const stop = async () => {
    await gateway?.close().catch(() => {});
    if (simulator) await stopChild(simulator);
    await Promise.allSettled(brokers.map((broker) => broker.stop()));
    await Promise.allSettled(servers.map((server) => server.dispose()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [federation, collective] = await Promise.all([
      startNatsServer({ name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    servers.push(federation, collective);
    for (const instance of ["b1", "b2"]) {
      const parsed = brokerConfigFrom({
        cluster: CLUSTER,
        instance,
        identity: `broker-${instance}.example.net`,
        collectives: [COLLECTIVE],
        metricsListen: "off",
        federation: { servers: [federation.url] },
        collective: { servers: [collective.url] },
      });
      if (!parsed.ok) throw new Error(parsed.error);
      brokers.push(await startBroker(parsed.config, { log: () => {} }));
    }
    const startNodes = async () => {
      const ready = join(dir, "nodes.ready");
      await rm(ready, { force: true });
      simulator = await spawnReady(ready, [
        join(ROOT, "cli/main.ts"),
        "simulate",
        "--nodes",
        String(nodes),
        "--server",
        collective.url,
        "--ca",
        caPath,
      ]);
    };
    await startNodes();
    const keys = await testKeys();
    const config = gatewayConfigFrom({ clusters: { [CLUSTER]: [COLLECTIVE] }, publicUrl: PUBLIC });
    if (!config.ok) throw new Error(config.error);
    gateway = await startGateway(
      {
        config: config.config,
        listen: { host: "127.0.0.1", port: 0 },
        natsServers: [federation.url],
        natsAuth: { type: "none" },
        certPem: pki.gateway.certPem,
        keyPem: pki.gateway.keyPem,
        keysJson: keys.json,
        jobs: false,
        readyFile: undefined,
      },
      { log: () => {}, audit: () => {} },
    );
    const running = gateway;
    return {
      gateway: running,
      brokers,
      keys,
      urls: { federation: federation.url, collective: collective.url },
      post: async (body, key = keys.admin) =>
        fetch(
          `${running.url}/v1/rpc`,
          await signedInit(`${PUBLIC}/v1/rpc`, { cluster: CLUSTER, ...body }, key),
        ),
      simulatorPid: () => simulator?.pid,
      restartNodes: async () => {
        if (simulator) await stopChild(simulator);
        await startNodes();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
