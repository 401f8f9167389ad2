// The federation nats-server, then the member-collective one, stopped and started again on the same port
// while requests stream: what was sent before the stop and after the system answered again must all be
// answered; what was sent in between is the outage's own.
import { bus, collectReplies, sleep } from "../integration/federation/support.ts";
import { type NatsServer, restartNatsServer } from "../support/nats-server.ts";
import { fillRow, firstAnsweredAfter, RequestStream, type Rig, settle, startRig } from "./rig.ts";
import { type BrokerBooks, emptyRow, type Row, type Scope } from "./support.ts";

const IN_FLIGHT_MS = 300;

export async function serverRestarts(scope: Scope): Promise<Row> {
  const row = emptyRow("federation + member server restarts");
  const rig = await startRig(scope, ["r1", "r2"]);
  let recovery = 0;
  let books: BrokerBooks[] = [];
  for (const side of ["federation", "collective"] as const) {
    const { seconds, after } = await restart(scope, rig, side, row, books);
    books = after;
    if (seconds === null) row.problems.push(`nothing answered after the ${side} server restarted`);
    else recovery = Math.max(recovery, seconds);
  }
  row.recoverySeconds = recovery;
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}

async function restart(
  scope: Scope,
  rig: Rig,
  side: "federation" | "collective",
  row: Row,
  before: BrokerBooks[],
): Promise<{ seconds: number | null; after: BrokerBooks[] }> {
  const server: NatsServer = rig[side];
  const stream = new RequestStream(() => rig.client, 5);
  await sleep(scope.n(2000, 300));
  const stoppedAt = Date.now();
  await server.stop();
  await sleep(scope.n(3000, 700));
  rig[side] = scope.watchServer(await restartNatsServer(server));
  const listening = Date.now();
  // The brokers' reconnection is what is measured, so the test client's own outage is kept out of it: a
  // fresh client replaces the one that lost its server.
  if (side === "federation") {
    rig.client = await bus(rig.federation.url, "chaos-client-2");
    scope.defer(() => rig.client.close());
    const replies = collectReplies(rig.client);
    await rig.client.flush();
    const old = rig.replies;
    rig.replies = replies;
    for (const [rid, got] of old.byRequest) replies.byRequest.set(rid, got);
  }
  await sleep(scope.n(4000, 700));
  const sent = await stream.stop();
  const outcome = await settle(rig.replies, sent, scope.n(5000, 2000));
  const recovered = firstAnsweredAfter(rig.replies, sent, listening);
  const answeredAgain = recovered === null ? Number.POSITIVE_INFINITY : listening + recovered * 1000;
  // The outage owns what was sent from the stop until the first answer after the restart, and what was
  // still on its way through the server when it stopped (a request sent 1 ms before has been lost so).
  row.inFlightOfKilled += outcome.incomplete.filter(
    ({ at }) => at >= stoppedAt - IN_FLIGHT_MS && at < answeredAgain,
  ).length;
  if (stream.refused > 0) row.refused[`publish_refused_${side}_down`] = stream.refused;
  return { seconds: recovered, after: await fillRow(row, outcome, sent, rig.brokers, before) };
}
