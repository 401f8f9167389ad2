// A fleet of thousands of simulated nodes in their own process (restartable, so that each run can meet a
// cold one) behind two brokers, and a Node gateway in front: what the 10,000-node discovery test and
// benchmark run against.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import type { SigningKey } from "../../../lib/security/http/mod.ts";
import { spawnReady, stopChild } from "../../bench/support/processes.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { type BrokerProcess, spawnBroker } from "../federation/support.ts";
import { CLUSTER, COLLECTIVE, signedInit, type TestKeys, testKeys } from "./support.ts";

const PUBLIC = "https://gateway.example.com";
const ROOT = join(import.meta.dirname, "../../..");

export interface BigFleet {
  gateway: RunningGateway;
  brokers: BrokerProcess[];
  keys: TestKeys;
  /** The NATS URLs: the federation (gateway, brokers' front) and the collective (brokers' back, nodes). */
  urls: { federation: string; collective: string };
  /** A signed POST /v1/rpc to the fleet's cluster, as `admin` unless another key is given. */
  post(body: Record<string, unknown>, key?: SigningKey): Promise<Response>;
  /** The simulator processes' ids, for their CPU time. */
  simulatorPids(): number[];
  /** Stops the simulator processes and starts fresh ones: the next request meets a cold fleet. */
  restartNodes(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `simulators` processes host disjoint parts of the fleet, as a real fleet is many hosts: one process
 * answering every node makes its CPU time serial on each request's path.
 */
export async function startBigFleet(nodes: number, simulators = 1): Promise<BigFleet> {
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-big-fleet-"));
  const pki = await testPki();
  const caPath = join(dir, "ca.pem");
  await writeFile(caPath, pki.caPem);
  const servers: NatsServer[] = [];
  const brokers: BrokerProcess[] = [];
  let simulator: ChildProcess[] = [];
  let gateway: RunningGateway | undefined;
  const stop = async () => {
    await gateway?.close().catch(() => {});
    await Promise.allSettled(simulator.map(stopChild));
    await Promise.allSettled(brokers.map((broker) => broker.kill()));
    await Promise.allSettled(servers.map((server) => server.dispose()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [federation, collective] = await Promise.all([
      startNatsServer({ name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    servers.push(federation, collective);
    // Brokers are processes of their own, as deployed, so that their work does not queue behind the
    // gateway's on one event loop.
    for (const instance of ["b1", "b2"])
      brokers.push(await spawnBroker(instance, federation.url, collective.url));
    const startNodes = async () => {
      const share = Math.ceil(nodes / simulators);
      simulator = await Promise.all(
        Array.from({ length: simulators }, async (_, part) => {
          const ready = join(dir, `nodes${part}.ready`);
          await rm(ready, { force: true });
          return spawnReady(
            ready,
            [
              join(ROOT, "cli/main.ts"),
              "simulate",
              "--nodes",
              String(Math.min(share, nodes - part * share)),
              "--offset",
              String(part * share),
              "--server",
              collective.url,
              "--ca",
              caPath,
            ],
            // For profiling the simulator under load, e.g. SIMULATOR_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
            process.env.SIMULATOR_NODE_ARGS?.split(" ").filter(Boolean),
          );
        }),
      );
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
      simulatorPids: () => simulator.flatMap((child) => (child.pid === undefined ? [] : [child.pid])),
      restartNodes: async () => {
        await Promise.all(simulator.map(stopChild));
        await startNodes();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
