import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";
import { freePort } from "../../support/ports.ts";
import {
  type BrokerProcess,
  bus,
  COLLECTIVE,
  collectReplies,
  federatedRequest,
  httpStatus,
  publishRequest,
  requestId,
  sleep,
  spawnBroker,
  startResponders,
} from "./support.ts";

const NODES = ["node1.example.net", "node2.example.net", "node3.example.net"];
const BROADCAST = `${COLLECTIVE}.broadcast.agent.rpcutil`;
// Long enough for a backoff that grows with the outage to wait seconds between attempts.
const OUTAGE_MS = 8000;
const BUDGET_MS = 2000;

const CLI = join(import.meta.dirname, "../../../bin/choria-edge.mjs");

/** Milliseconds from `since` until `url` answers 200; infinite after 15 s. */
async function readyAfter(url: string, since: number): Promise<number> {
  while ((await httpStatus(url)) !== 200) {
    if (Date.now() - since > 15_000) return Number.POSITIVE_INFINITY;
    await sleep(20);
  }
  return Date.now() - since;
}

// Issue 12, finding 14: after a federation nats-server restart a broker took 5.7 s to be back, the
// collector 2.3 s; every part should be back within 2 s.
describe("recovery after a federation nats-server restart", () => {
  let federationServer: NatsServer;
  let collectiveServer: NatsServer;
  let nodes: MessageBus;
  let brokers: BrokerProcess[] = [];
  let collector: ChildProcess | undefined;
  let collectorReady: string;
  const clients: MessageBus[] = [];

  beforeAll(async () => {
    [federationServer, collectiveServer] = await Promise.all([
      startNatsServer({ name: "federation", jetstream: true }),
      startNatsServer({ name: "collective" }),
    ]);
    brokers = await Promise.all(
      ["b1", "b2", "b3"].map((name) => spawnBroker(name, federationServer.url, collectiveServer.url)),
    );
    const metricsPort = await freePort();
    collectorReady = `http://127.0.0.1:${metricsPort}/readyz`;
    collector = spawn(
      process.execPath,
      [CLI, "collector", "--servers", federationServer.url, "--metrics-listen", `127.0.0.1:${metricsPort}`],
      { stdio: "ignore" },
    );
    expect(await readyAfter(collectorReady, Date.now())).toBeLessThan(15_000);
    nodes = await bus(collectiveServer.url, "test-nodes");
    startResponders(nodes, NODES);
    await nodes.flush();
  }, 40_000);

  afterAll(async () => {
    await Promise.allSettled(brokers.map((b) => b.kill("SIGKILL")));
    collector?.kill("SIGKILL");
    await Promise.allSettled([nodes?.close(), ...clients.map((c) => c.close())]);
    await Promise.allSettled([federationServer?.dispose(), collectiveServer?.dispose()]);
  });

  it(`has every broker and the collector ready, and routing, within ${BUDGET_MS} ms of the server listening again`, async () => {
    await federationServer.stop();
    await sleep(OUTAGE_MS);
    federationServer = await restartNatsServer(federationServer);
    const listening = Date.now();

    const ready = brokers.map((broker) => readyAfter(`${broker.httpUrl}/readyz`, listening));
    const collectorBack = readyAfter(collectorReady, listening);

    // A client connecting afresh, so that only the brokers' reconnection is measured.
    const client = await bus(federationServer.url, "test-client");
    clients.push(client);
    const replies = collectReplies(client);
    await client.flush();
    let routed = Number.POSITIVE_INFINITY;
    while (Date.now() - listening < 15_000) {
      const rid = requestId();
      publishRequest(client, federatedRequest(rid, [BROADCAST]));
      const done = await replies.waitFor(rid, NODES.length, 100).then(
        () => true,
        () => false,
      );
      if (done) {
        routed = Date.now() - listening;
        break;
      }
    }
    const readyMs = await Promise.all(ready);
    const collectorMs = await collectorBack;
    console.log(
      `after a ${OUTAGE_MS} ms outage: /readyz 200 at ${brokers.map((b, i) => `${b.instance} ${readyMs[i]} ms`).join(", ")}, ` +
        `collector ${collectorMs} ms; first request routed end to end at ${routed} ms after the server listened`,
    );
    expect(collectorMs, "collector ready").toBeLessThanOrEqual(BUDGET_MS);
    for (const [i, ms] of readyMs.entries())
      expect(ms, `${brokers[i]!.instance} ready`).toBeLessThanOrEqual(BUDGET_MS);
    expect(routed, "request routed").toBeLessThanOrEqual(BUDGET_MS);
  }, 60_000);
});
