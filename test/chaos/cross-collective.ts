// Probes from the federation at collectives and subjects this cluster may not reach (another collective's
// nodes and clients, NATS's `$` namespaces, wildcards), and forged replies from the member side aimed at
// them, among well-formed requests: every probe is refused with its reason and nothing arrives where it
// was aimed; the well-formed requests are all answered.

import type { TransportV1 } from "../../lib/protocol/transport.ts";
import {
  COLLECTIVE,
  federatedRequest,
  publishRequest,
  requestId,
  sleep,
} from "../integration/federation/support.ts";
import { COLLECTIVE_SUBJECT } from "./garbage.ts";
import { BROADCAST, fillRow, NODES, type Sent, settle, startRig } from "./rig.ts";
import { brokerBooks, emptyRow, type Row, type Scope, sum, totals, until } from "./support.ts";

const OTHER = "othercoll";

type Probe =
  | { side: "federation"; packet: (rid: string) => TransportV1 }
  | { side: "collective"; replyTo: string };

const request = (targets: string[], replyTo?: string) => (rid: string) => {
  const packet = federatedRequest(rid, targets);
  if (replyTo !== undefined) packet.headers["reply-to"] = replyTo;
  return packet;
};

const PROBES: Probe[] = [
  { side: "federation", packet: request([`${OTHER}.broadcast.agent.rpcutil`]) },
  { side: "federation", packet: request([`${OTHER}.node.node1.example.net`]) },
  {
    side: "federation",
    packet: request([`${COLLECTIVE}.node.node1.example.net`, `${OTHER}.node.node2.example.net`]),
  },
  {
    side: "federation",
    packet: request([BROADCAST], `${OTHER}.reply.37bdf08389145a56c13096c178802d3b.${requestId()}`),
  },
  { side: "federation", packet: request([BROADCAST], "$JS.API.STREAM.DELETE.KV_choria_edge_jobs") },
  { side: "federation", packet: request(["$KV.choria_edge_jobs.x"]) },
  { side: "federation", packet: request([`${COLLECTIVE}.>`]) },
  { side: "federation", packet: request([`${OTHER}.*.agent.rpcutil`]) },
  { side: "collective", replyTo: `${OTHER}.reply.37bdf08389145a56c13096c178802d3b.${requestId()}` },
  { side: "collective", replyTo: "$JS.API.CONSUMER.DELETE.CHORIA_EDGE_REPLIES.x" },
];

export async function crossCollective(scope: Scope): Promise<Row> {
  const row = emptyRow("cross-collective probes");
  const rig = await startRig(scope, ["x1", "x2"]);
  const aimed: string[] = [];
  for (const [bus, subject] of [
    [rig.client, `${OTHER}.>`],
    [rig.nodes, `${OTHER}.>`],
    [rig.client, "$JS.>"],
    [rig.client, "$KV.>"],
  ] as const)
    bus.subscribe(subject, (msg) => aimed.push(msg.subject));
  await Promise.all([rig.client.flush(), rig.nodes.flush()]);
  const before = await Promise.all(rig.brokers.map((b) => brokerBooks(b.httpUrl)));
  const heardBefore = sum(Object.fromEntries(rig.heard));

  const total = scope.n(5000, 500);
  const legit: Sent[] = [];
  let probes = 0;
  for (let i = 0; i < total; i++) {
    if (i % 5 === 4) {
      const rid = requestId();
      publishRequest(rig.client, federatedRequest(rid, [BROADCAST]));
      legit.push({ rid, at: Date.now() });
    } else {
      const probe = PROBES[probes % PROBES.length]!;
      if (probe.side === "federation") publishRequest(rig.client, probe.packet(requestId()));
      else
        rig.nodes.publish(
          COLLECTIVE_SUBJECT,
          JSON.stringify({
            protocol: "choria:transport:1",
            data: "e30=",
            headers: {
              mc_sender: "node1.example.net",
              federation: { req: requestId(), "reply-to": probe.replyTo },
            },
          }),
        );
      probes++;
    }
    if (i % 200 === 199) await Promise.all([rig.client.flush(), rig.nodes.flush()]);
  }
  await Promise.all([rig.client.flush(), rig.nodes.flush()]);
  const refusedSoFar = async () => {
    const delta = totals(await Promise.all(rig.brokers.map((b) => brokerBooks(b.httpUrl))), before);
    return sum(delta.refused) + sum(delta.dropped);
  };
  if (!(await until(async () => (await refusedSoFar()) >= probes, scope.n(30_000, 10_000))))
    row.problems.push(`only ${await refusedSoFar()} of ${probes} probes refused in time`);
  const outcome = await settle(rig.replies, legit, 5000);
  // A moment for anything that leaked to arrive where it was aimed.
  await sleep(300);
  const after = await fillRow(row, outcome, legit, rig.brokers, before);
  row.sent = total;
  const delta = totals(after, before);
  const refused = sum(delta.refused) + sum(delta.dropped);
  row.lost += Math.max(0, probes - refused);
  if (refused !== probes) row.problems.push(`${probes} probes sent, ${refused} refused or dropped`);
  const heard = sum(Object.fromEntries(rig.heard)) - heardBefore;
  if (heard !== legit.length * NODES.length)
    row.problems.push(`the nodes heard ${heard} requests for ${legit.length} well-formed broadcasts`);
  if (aimed.length > 0)
    row.problems.push(`${aimed.length} packets reached where probes aimed, e.g. ${aimed[0]}`);
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}
