// One of three brokers reaches one side through a TCP proxy, which is cut mid-stream and later restored:
// the other brokers carry the work while it is cut, only what it held at the cut may be lost, and once
// restored it is ready again and takes its share.
import { sleep, startTcpProxy, type TcpProxy } from "../integration/federation/support.ts";
import { fillRow, RequestStream, settle, startRig, waitReady } from "./rig.ts";
import { brokerBooks, emptyRow, type Row, type Scope, until } from "./support.ts";

/** Requests sent this long after the cut may have been in the cut broker before it noticed. */
const AFTER_CUT_MS = 1000;

export async function proxyCut(scope: Scope, side: "federation" | "collective"): Promise<Row> {
  const row = emptyRow(`proxy cut, ${side} side of one broker`);
  let proxy: TcpProxy | undefined;
  const rig = await startRig(scope, ["p1", "p2", "p3"], {
    via: (name, urls) => (name === "p3" && proxy ? { ...urls, [side]: proxy.url } : urls),
    prepare: async (servers) => {
      const cut = await startTcpProxy(servers[side].port);
      scope.defer(() => cut.close());
      proxy = cut;
    },
  });
  const cutBroker = rig.brokers[2]!;
  const stream = new RequestStream(() => rig.client, 3);
  await sleep(scope.n(3000, 500));
  const cutAt = Date.now();
  proxy!.cut();
  if (!(await waitReady(cutBroker, false, 5000))) row.problems.push("the cut broker still said it was ready");
  await sleep(scope.n(3000, 500));
  const taken = (await brokerBooks(cutBroker.httpUrl)).federation.received;
  const restoredAt = Date.now();
  proxy!.restore();
  if (await waitReady(cutBroker, true, 10_000)) row.recoverySeconds = (Date.now() - restoredAt) / 1000;
  else row.problems.push("the cut broker was not ready again within 10 s");
  const takesWork = await until(
    async () => (await brokerBooks(cutBroker.httpUrl)).federation.received > taken,
    scope.n(5000, 3000),
  );
  if (!takesWork) row.problems.push("the restored broker took no request");
  const sent = await stream.stop();
  const outcome = await settle(rig.replies, sent, scope.n(5000, 2000));
  row.inFlightOfKilled = outcome.incomplete.filter(
    ({ at }) => at >= cutAt - 300 && at <= cutAt + AFTER_CUT_MS,
  ).length;
  if (stream.refused > 0) row.refused.publish_refused = stream.refused;
  await fillRow(row, outcome, sent, rig.brokers);
  row.peakRssMiB = scope.peakRssMiB();
  return row;
}
