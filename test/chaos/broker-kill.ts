// A broker process killed (SIGKILL) in the middle of a stream of requests: only what it held in flight
// may be lost, the survivor takes every request and reply after that, nothing arrives twice.

import { sleep } from "../integration/federation/support.ts";
import { fillRow, RequestStream, settle, startRig } from "./rig.ts";
import { emptyRow, type Row, type Scope } from "./support.ts";

/** Requests sent this long around the kill may have been in the killed process; wider on a loaded host. */
const BEFORE_KILL_MS = 300;
const AFTER_KILL_MS = 1000;

export async function brokerKill(scope: Scope): Promise<Row> {
  const row = emptyRow("broker kill mid-stream");
  const rig = await startRig(scope, ["k1", "k2"]);
  const victim = rig.brokers[0]!;
  const survivor = rig.brokers[1]!;
  const stream = new RequestStream(() => rig.client, 3);
  await sleep(scope.n(6000, 700));
  const killedAt = Date.now();
  scope.kill(victim.child);
  await victim.exited;
  await sleep(scope.n(6000, 700));
  const sent = await stream.stop();
  const outcome = await settle(rig.replies, sent, scope.n(5000, 2000));
  row.refused = stream.refused > 0 ? { publish_refused: stream.refused } : {};
  await fillRow(row, outcome, sent, [survivor]);
  const inWindow = outcome.incomplete.filter(
    ({ at }) => at >= killedAt - BEFORE_KILL_MS && at <= killedAt + AFTER_KILL_MS,
  );
  row.inFlightOfKilled = inWindow.length;
  // Recovered once requests stop being lost: the last lost one's send time, from the kill.
  const lastLoss = Math.max(killedAt, ...outcome.incomplete.map(({ at }) => at));
  row.recoverySeconds = (lastLoss - killedAt) / 1000;
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}
