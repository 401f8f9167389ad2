// 100,000 malformed packets at two broker processes (both sides), at simulated nodes and at a collector,
// with well-formed requests among them: every packet must reach its receiver and be refused with a reason
// (or counted as overloaded), none routed, answered or stored; the well-formed ones are all answered.
import { startCollector } from "../../functions/result-collector.ts";
import type { MessageBus } from "../../lib/transport/bus.ts";
import {
  COLLECTIVE,
  federatedRequest,
  publishRequest,
  requestId,
} from "../integration/federation/support.ts";
import { collectorConfig, nodesOn } from "../integration/results/support.ts";
import { simulatedNodes } from "../unit/results/jobs/support.ts";
import {
  bytes,
  COLLECTIVE_SUBJECT,
  collectiveSide,
  collectorSide,
  collectorSubject,
  FEDERATION_SUBJECT,
  federationSide,
  federationSideLarge,
  nodeSide,
} from "./garbage.ts";
import { BROADCAST, fillRow, NODES, type Sent, settle, startRig } from "./rig.ts";
import { addCounts, brokerBooks, emptyRow, type Row, type Scope, sum, totals, until } from "./support.ts";

const BATCH = 500;

export async function malformedNats(scope: Scope): Promise<Row> {
  const total = scope.n(100_000, 4000);
  const row = emptyRow(`${total} malformed NATS packets`);
  const rig = await startRig(scope, ["m1", "m2"], { jetstream: true });
  const nodes = await simulatedNodes(5, 3);
  const { bus: nodesBus, service } = await nodesOn(rig.collective, nodes);
  scope.defer(() => nodesBus.close());
  const collector = await startCollector(collectorConfig(rig.federation), { log: () => {} });
  scope.defer(() => collector.stop());
  // The responders share the rpcutil broadcast subject; garbage goes only where the nodes alone listen.
  const nodeSubjects = nodes.host.subjects.filter((s) => s !== BROADCAST);

  const before = await Promise.all(rig.brokers.map((b) => brokerBooks(b.httpUrl)));
  const nodesBefore = {
    received: service.stats.received,
    dropped: sum(service.stats.dropped),
    replies: service.stats.replies,
  };
  const collectorBefore = { ...collector.collector.stats };
  const sent = { federation: 0, collective: 0, node: 0, collector: 0 };
  const probes: Sent[] = [];
  const publish = (to: MessageBus, subject: string, body: Uint8Array) => {
    if (!to.publish(subject, body)) row.refused.publish_refused = (row.refused.publish_refused ?? 0) + 1;
  };
  for (let i = 0; i < total; i++) {
    const n = Math.floor(i / 5);
    switch (i % 5) {
      case 0:
      case 1: {
        // One in 2,500 is a large one, the two large kinds taking turns.
        const make =
          i % 5000 === 0
            ? federationSideLarge[(i / 5000) % federationSideLarge.length]!
            : federationSide[n % federationSide.length]!;
        publish(rig.client, FEDERATION_SUBJECT, bytes(make, i));
        sent.federation++;
        break;
      }
      case 2:
        publish(rig.nodes, COLLECTIVE_SUBJECT, bytes(collectiveSide[n % collectiveSide.length]!, i));
        sent.collective++;
        break;
      case 3:
        publish(rig.nodes, nodeSubjects[n % nodeSubjects.length]!, bytes(nodeSide[n % nodeSide.length]!, i));
        sent.node++;
        break;
      default:
        publish(rig.client, collectorSubject(n), bytes(collectorSide[n % collectorSide.length]!, i));
        sent.collector++;
    }
    if (i % 1000 === 999) {
      const rid = requestId();
      publishRequest(
        rig.client,
        federatedRequest(
          rid,
          NODES.map((id) => `${COLLECTIVE}.node.${id}`),
        ),
      );
      probes.push({ rid, at: Date.now() });
    }
    if (i % BATCH === BATCH - 1) await Promise.all([rig.client.flush(), rig.nodes.flush()]);
  }
  await Promise.all([rig.client.flush(), rig.nodes.flush()]);

  const brokersGot = async () => {
    const delta = totals(await Promise.all(rig.brokers.map((b) => brokerBooks(b.httpUrl))), before);
    return delta.received;
  };
  const expectedAtBrokers = sent.federation + sent.collective + probes.length * (1 + NODES.length);
  const arrived = await until(
    async () =>
      (await brokersGot()) >= expectedAtBrokers &&
      service.stats.received - nodesBefore.received >= sent.node &&
      collector.collector.stats.received - collectorBefore.received >= sent.collector,
    scope.n(90_000, 20_000),
  );
  await service.idle();
  const outcome = await settle(rig.replies, probes, 5000);
  const after = await fillRow(row, outcome, probes, rig.brokers, before);
  row.sent = total + probes.length;

  const delta = totals(after, before);
  const routedGarbage = delta.routed - probes.length * (1 + NODES.length);
  if (routedGarbage > 0) row.problems.push(`the brokers routed ${routedGarbage} malformed packets`);
  const nodesGot = service.stats.received - nodesBefore.received;
  const collectorGot = collector.collector.stats.received - collectorBefore.received;
  const missing = {
    brokers: expectedAtBrokers - delta.received,
    nodes: sent.node - nodesGot,
    collector: sent.collector - collectorGot,
  };
  row.lost += Math.max(0, missing.brokers) + Math.max(0, missing.nodes) + Math.max(0, missing.collector);
  if (!arrived) row.problems.push(`not every packet arrived: missing ${JSON.stringify(missing)}`);

  // The nodes' books: every request received was dropped with a reason; none was answered.
  const nodesDropped = sum(service.stats.dropped) - nodesBefore.dropped;
  const nodeReplies = service.stats.replies - nodesBefore.replies;
  if (nodesDropped !== nodesGot || nodeReplies !== 0) {
    row.booksBalanced = false;
    row.problems.push(`nodes received ${nodesGot}, dropped ${nodesDropped}, answered ${nodeReplies}`);
  }
  addCounts(row.refused, service.stats.dropped as Record<string, number>, "node:");

  // The collector's books: every reply handed to it was stored, refused or handed back.
  const s = collector.collector.stats;
  const refusedByCollector = {
    invalid: s.invalid - collectorBefore.invalid,
    too_deep: s.too_deep - collectorBefore.too_deep,
    unknown_job: s.unknown_job - collectorBefore.unknown_job,
    late: s.late - collectorBefore.late,
  };
  const accounted =
    sum(refusedByCollector) +
    s.stored -
    collectorBefore.stored +
    s.duplicates -
    collectorBefore.duplicates +
    s.retried -
    collectorBefore.retried;
  if (accounted !== collectorGot || s.stored !== collectorBefore.stored) {
    row.booksBalanced = false;
    row.problems.push(
      `collector received ${collectorGot}, accounted for ${accounted}, stored ${s.stored - collectorBefore.stored}`,
    );
  }
  addCounts(row.refused, refusedByCollector, "collector:");
  if (s.retried > collectorBefore.retried)
    row.refused["collector:retried"] = s.retried - collectorBefore.retried;
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}
