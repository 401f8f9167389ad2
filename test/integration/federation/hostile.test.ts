// Issue 12, against a real broker process between two real nats-servers: packets nested too deep, and
// reply-to subjects aimed at another member collective's clients or at NATS's own `$` namespaces, are
// refused and counted by reason; every message received is accounted for; the broker keeps serving.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import {
  type BrokerProcess,
  bus,
  CLUSTER,
  COLLECTIVE,
  collectReplies,
  eventually,
  federatedRequest,
  httpText,
  metric,
  publishRequest,
  type ReplyLog,
  requestId,
  sleep,
  spawnBroker,
  startResponders,
} from "./support.ts";

const NODES = ["node1.example.net", "node2.example.net", "node3.example.net"];
const BROADCAST = `${COLLECTIVE}.broadcast.agent.rpcutil`;
const DEEP = 5000;
const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

/** A packet with a header holding an array nested DEEP levels, built as text (~10 KB). */
function withDeepHeader(packet: object): string {
  const text = JSON.stringify(packet).replace(/}}$/, `,"x-deep":${nested(DEEP)}}}`);
  expect(text.length).toBeGreaterThan(10_000);
  return text;
}

describe("a broker process facing hostile packets (issue 12)", () => {
  let federationServer: NatsServer;
  let collectiveServer: NatsServer;
  let client: MessageBus;
  let nodes: MessageBus;
  let replies: ReplyLog;
  let broker: BrokerProcess;
  let responders: { received: Map<string, number> };

  beforeAll(async () => {
    [federationServer, collectiveServer] = await Promise.all([
      startNatsServer({ name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    broker = await spawnBroker("h1", federationServer.url, collectiveServer.url);
    client = await bus(federationServer.url, "test-client");
    nodes = await bus(collectiveServer.url, "test-nodes");
    responders = startResponders(nodes, NODES);
    replies = collectReplies(client);
    await Promise.all([client.flush(), nodes.flush()]);
  }, 40_000);

  afterAll(async () => {
    await broker?.kill("SIGKILL");
    await Promise.allSettled([client?.close(), nodes?.close()]);
    await Promise.allSettled([federationServer?.dispose(), collectiveServer?.dispose()]);
  });

  async function books() {
    const text = await httpText(`${broker.httpUrl}/metrics`);
    const sides = ["federation", "collective"] as const;
    return Object.fromEntries(
      sides.map((side) => {
        const other = side === "federation" ? "collective" : "federation";
        const received = metric(text, "choria_federation_received_msgs", {
          name: "nats_ingest",
          connected_to: side,
        });
        const routed = metric(text, "choria_federation_received_msgs", {
          name: "nats_egest",
          connected_to: other,
        });
        const refused = metric(text, "choria_edge_federation_refused_msgs", { side });
        const dropped = metric(text, "choria_edge_federation_dropped_msgs", { side });
        const reason = (r: string) =>
          metric(text, "choria_edge_federation_refused_msgs", { side, reason: r });
        return [side, { received, routed, refused, dropped, reason }];
      }),
    ) as Record<
      (typeof sides)[number],
      {
        received: number;
        routed: number;
        refused: number;
        dropped: number;
        reason: (r: string) => number;
      }
    >;
  }

  it("refuses packets nested 5,000 deep on both sides as too_deep, counted, logged once, books balanced", async () => {
    const before = await books();
    for (let i = 0; i < 5; i++) {
      publishRequest(client, withDeepHeader(federatedRequest(requestId(), [BROADCAST])));
      const reply = {
        ...federatedRequest(requestId(), []),
        headers: {
          mc_sender: "node1.example.net",
          federation: { req: requestId(), "reply-to": `${COLLECTIVE}.reply.x.${requestId()}` },
        },
      };
      nodes.publish(`choria.federation.${CLUSTER}.collective`, withDeepHeader(reply));
    }
    await Promise.all([client.flush(), nodes.flush()]);

    const after = await eventually(async () => {
      const b = await books();
      return b.federation.received - before.federation.received === 5 &&
        b.collective.received - before.collective.received === 5
        ? b
        : undefined;
    });
    for (const side of ["federation", "collective"] as const) {
      const b = after[side];
      // Every message received is routed, refused with a reason or dropped with a reason.
      expect(b.received, side).toBe(b.routed + b.refused + b.dropped);
      expect(b.reason("too_deep") - before[side].reason("too_deep")).toBe(5);
    }
    const output = broker.output();
    expect(output).not.toContain("Maximum call stack");
    // Logged at most once per side and reason per --log-interval (10 s by default), not once per packet.
    expect(output.split("\n").filter((line) => line.includes('"too_deep"')).length).toBe(2);

    const rid = requestId();
    publishRequest(client, federatedRequest(rid, [BROADCAST]));
    expect((await replies.waitFor(rid, 3)).sort()).toEqual(NODES);
  });

  it("refuses reply-to in another collective's reply namespace or under $JS., and never reaches the nodes", async () => {
    const before = await books();
    const heard = new Map(responders.received);
    const aimed: string[] = [];
    const listen = (subject: string) => client.subscribe(subject, (msg) => aimed.push(msg.subject));
    listen("othercoll.reply.>");
    listen("$JS.>");
    await client.flush();

    const bad = [
      `othercoll.reply.37bdf08389145a56c13096c178802d3b.${requestId()}`,
      "$JS.API.STREAM.DELETE.KV_choria_edge_jobs",
      `$JS.reply.x.${requestId()}`,
    ];
    for (const replyTo of bad) {
      const packet = federatedRequest(requestId(), [BROADCAST]);
      packet.headers["reply-to"] = replyTo;
      publishRequest(client, packet);
    }
    // And a reply whose federation.reply-to was forged on the collective side.
    nodes.publish(
      `choria.federation.${CLUSTER}.collective`,
      JSON.stringify({
        protocol: "choria:transport:1",
        data: "e30=",
        headers: {
          mc_sender: "node1.example.net",
          federation: { req: requestId(), "reply-to": bad[0] },
        },
      }),
    );
    await Promise.all([client.flush(), nodes.flush()]);

    const after = await eventually(async () => {
      const b = await books();
      return b.federation.refused - before.federation.refused === 3 &&
        b.collective.refused - before.collective.refused === 1
        ? b
        : undefined;
    });
    expect(after.federation.reason("reply_not_allowed") - before.federation.reason("reply_not_allowed")).toBe(
      1,
    );
    expect(after.federation.reason("reserved_subject") - before.federation.reason("reserved_subject")).toBe(
      2,
    );
    expect(after.collective.reason("reply_not_allowed") - before.collective.reason("reply_not_allowed")).toBe(
      1,
    );
    await sleep(200);
    expect(aimed).toEqual([]);
    expect(responders.received).toEqual(heard);
  });
});
