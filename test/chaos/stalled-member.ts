// The member-collective nats-server frozen (SIGSTOP) mid-stream, then thawed: the brokers hold or count
// what they cannot deliver, every packet they received is still in their books, and the requests sent
// during the stall are answered once the server runs again or were counted as dropped.
import { sleep } from "../integration/federation/support.ts";
import { fillRow, firstAnsweredAfter, RequestStream, settle, startRig } from "./rig.ts";
import { brokerBooks, emptyRow, natsServerPid, type Row, type Scope, sum, totals } from "./support.ts";

export async function stalledMember(scope: Scope): Promise<Row> {
  const row = emptyRow("stalled member server");
  const rig = await startRig(scope, ["s1", "s2"]);
  const pid = natsServerPid(rig.collective);
  if (pid === undefined) throw new Error("the collective nats-server's process was not found");
  // However the scenario ends, the server must not stay frozen for its clean-up.
  scope.defer(() => process.kill(pid, "SIGCONT"));
  const before = await Promise.all(rig.brokers.map((b) => brokerBooks(b.httpUrl)));
  const stream = new RequestStream(() => rig.client, 5);
  await sleep(scope.n(2000, 300));
  process.kill(pid, "SIGSTOP");
  await sleep(scope.n(5000, 1000));
  process.kill(pid, "SIGCONT");
  const resumedAt = Date.now();
  await sleep(scope.n(3000, 700));
  const sent = await stream.stop();
  const outcome = await settle(rig.replies, sent, scope.n(10_000, 5000));
  row.recoverySeconds = firstAnsweredAfter(rig.replies, sent, resumedAt);
  if (stream.refused > 0) row.refused.publish_refused = stream.refused;
  const after = await fillRow(row, outcome, sent, rig.brokers, before);
  // A request a broker counted as dropped is explained loss; any other is not.
  row.inFlightOfKilled = Math.min(outcome.incomplete.length, sum(totals(after, before).dropped));
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}
