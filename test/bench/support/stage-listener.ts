// A passive listener on both NATS servers of the 10,000-node bench, in a process of its own so that its
// clock is not held up by the gateway and brokers it watches (they share the bench's event loop). It keeps
// the arrival time of each message (epoch ms, sub-millisecond) and answers the parent over IPC.
import { collectiveSubject } from "../../../lib/protocol/mod.ts";
import { connectNats } from "../../../lib/transport/node.ts";

export type Stream = "request" | "copy" | "reply" | "relayed";
export type Times = Record<Stream, number[]>;

const [federationUrl, collectiveUrl, cluster, collective] = process.argv.slice(2);
if (!federationUrl || !collectiveUrl || !cluster || !collective || !process.send)
  throw new Error(
    "usage: stage-listener.ts <federation url> <collective url> <cluster> <collective>, forked",
  );
const send = process.send.bind(process);

const times: Times = { request: [], copy: [], reply: [], relayed: [] };
const now = () => performance.timeOrigin + performance.now();
const note = (stream: Stream) => () => void times[stream].push(now());
const [fed, col] = await Promise.all([
  connectNats({ servers: federationUrl, name: "bench-stages" }),
  connectNats({ servers: collectiveUrl, name: "bench-stages" }),
]);
fed.subscribe(`choria.federation.${cluster}.federation`, note("request"));
fed.subscribe(`${collective}.reply.>`, note("relayed"));
col.subscribe(`${collective}.broadcast.agent.>`, note("copy"));
col.subscribe(`${collective}.node.>`, note("copy"));
col.subscribe(collectiveSubject(cluster), note("reply"));
await Promise.all([fed.flush(), col.flush()]);

process.on("message", (message) => {
  if (message === "reset") {
    for (const list of Object.values(times)) list.length = 0;
    send("reset");
  } else if (message === "times") send(times);
  else if (message === "stop") void Promise.all([fed.close(), col.close()]).then(() => process.exit(0));
});
send("ready");
