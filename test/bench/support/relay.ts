// The cheapest possible stand-in for a broker, to measure what two extra process hops cost on this machine:
// forwards request bytes from the federation server to the broadcast subject and reply bytes back to one
// fixed subject, without reading them. Args: <federation url> <collective url> <broadcast subject>.
import { connectNats } from "../../../lib/transport/node.ts";

const [federationUrl, collectiveUrl, broadcast] = process.argv.slice(2) as [string, string, string];
const federation = await connectNats({ servers: federationUrl, name: "relay-federation" });
const collective = await connectNats({ servers: collectiveUrl, name: "relay-collective" });
federation.queueSubscribe("bench.relay.requests", "relay", (msg) => collective.publish(broadcast, msg.data));
collective.queueSubscribe("bench.relay.replies", "relay", (msg) =>
  federation.publish("bench.relay.client", msg.data),
);
await Promise.all([federation.flush(), collective.flush()]);
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void Promise.all([federation.drain(), collective.drain()]).then(() => process.exit(0));
});
