import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ClientIdentity,
  federatedPackets,
  type SignedRequest,
  signRpcRequest,
} from "../../../lib/client/request.ts";
import { generateFleet } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { federationSubject, nodeSubject, replySubject } from "../../../lib/protocol/subjects.ts";
import { encodeTransport } from "../../../lib/protocol/transport.ts";
import { type Collection, collectReplies } from "../../../lib/results/collect-replies.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { type BrokerProcess, bus, CLUSTER, COLLECTIVE, httpText, metric, spawnBroker } from "./support.ts";

// Real Choria member nodes (signature checks, filters, agents) behind two broker processes: what a
// federated Go client would see.
const fleet = generateFleet({ count: 500, collective: COLLECTIVE, seed: 11 });

describe("signed requests through two brokers to real member nodes", () => {
  let federationServer: NatsServer;
  let collectiveServer: NatsServer;
  let client: MessageBus;
  let nodesBus: MessageBus;
  let service: NodeService;
  let brokers: BrokerProcess[] = [];
  let identity: ClientIdentity;

  beforeAll(async () => {
    const pki = await testPki();
    [federationServer, collectiveServer] = await Promise.all([
      startNatsServer({ name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    brokers = await Promise.all(
      ["m1", "m2"].map((name) => spawnBroker(name, federationServer.url, collectiveServer.url)),
    );
    client = await bus(federationServer.url, "member-test-client");
    nodesBus = await bus(collectiveServer.url, "member-test-nodes");
    service = serveNodes(nodesBus, new NodeHost({ fleet, trust: TrustStore.fromPem(pki.caPem) }));
    await nodesBus.flush();
    identity = {
      signer: await loadSigner(pki.client),
      callerid: "choria=rip.mcollective",
      senderid: "client.example.net",
    };
  }, 40_000);

  afterAll(async () => {
    await service?.stop();
    await Promise.allSettled(brokers.map((b) => b.kill("SIGTERM")));
    await Promise.allSettled([client?.close(), nodesBus?.close()]);
    await Promise.allSettled([federationServer?.dispose(), collectiveServer?.dispose()]);
  });

  async function send(signed: SignedRequest, targets: string[], expected: number): Promise<Collection> {
    const inbox = replySubject(COLLECTIVE, identity.callerid, signed.request.envelope.requestid);
    const collection = collectReplies(client, inbox, signed.request.envelope.requestid, {
      expected,
      timeoutMs: 15_000,
    });
    await collection.ready;
    const url = client.connectedUrl();
    const packets = federatedPackets(signed, targets, {
      replyTo: inbox,
      sender: identity.senderid,
      hop: [url, identity.senderid, url],
    });
    for (const packet of packets) client.publish(federationSubject(CLUSTER), encodeTransport(packet));
    return collection.result;
  }

  it("a federated broadcast reaches every node and each reply comes back exactly once, verified", async () => {
    const signed = await signRpcRequest(identity, {
      collective: COLLECTIVE,
      agent: "rpcutil",
      action: "ping",
    });
    const result = await send(signed, [`${COLLECTIVE}.broadcast.agent.rpcutil`], fleet.length);
    expect(result.done).toBe("expected");
    expect(result.duplicates).toBe(0);
    expect(result.invalid).toBe(0);
    expect(new Set(result.replies.map((r) => r.sender))).toEqual(new Set(fleet.map((n) => n.identity)));
    for (const reply of result.replies) {
      expect(reply.rpc?.statuscode).toBe(0);
      // client hop, broker hop, node hop, broker hop: the federation header is gone again.
      expect(reply.transport.headers["seen-by"]).toHaveLength(4);
      expect(reply.transport.headers.federation).toBeUndefined();
    }
  });

  it("a directed request to 450 nodes goes out as 3 packets of at most 200 targets and every node answers", async () => {
    const chosen = fleet.slice(0, 450).map((n) => n.identity);
    const signed = await signRpcRequest(identity, {
      collective: COLLECTIVE,
      agent: "rpcutil",
      action: "ping",
      filter: { identity: chosen },
    });
    const targets = chosen.map((id) => nodeSubject(COLLECTIVE, id));
    expect(federatedPackets(signed, targets, { replyTo: "x.reply.y.z", sender: "c" })).toHaveLength(3);
    const result = await send(signed, targets, chosen.length);
    expect(result.done).toBe("expected");
    expect(result.replies.map((r) => r.sender).sort()).toEqual([...chosen].sort());
  });

  it("both instances carried a share of the work", async () => {
    const received = await Promise.all(
      brokers.map(async (b) =>
        metric(await httpText(`${b.httpUrl}/metrics`), "choria_federation_received_msgs", {
          name: "nats_ingest",
        }),
      ),
    );
    for (const count of received) expect(count).toBeGreaterThan(0);
    // 1 + 3 requests and 500 + 450 replies went through the cluster in all.
    expect(received.reduce((a, b) => a + b, 0)).toBe(4 + fleet.length + 450);
  });
});
