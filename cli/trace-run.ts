// `choria-edge trace` once its arguments are read: signs one ping, sends it through the brokers with
// seen-by recording on, and prints the route.
import { join } from "node:path";
import type { StackFile } from "../infra/stack-file.ts";
import type { ClientIdentity } from "../lib/client/mod.ts";
import { federatedPackets, openReply, signRpcRequest } from "../lib/client/mod.ts";
import { DEMO_PKI_MADE, FileProblem, pkiDir, readNamedFile } from "../lib/config/mod.ts";
import { describeHops, renderTrace, type TraceReport } from "../lib/federation/mod.ts";
import {
  encodeTransport,
  federationSubject,
  nodeSubject,
  replySubject,
  type SeenByHop,
} from "../lib/protocol/mod.ts";
import { loadSigner } from "../lib/security/mod.ts";
import type { NatsBus } from "../lib/transport/mod.ts";
import { federationTarget, localStack } from "./local-stack.ts";
import { connectClient } from "./nats-client.ts";
import type { Output, TraceArgs } from "./trace.ts";

/** Exit 0 with the route, 1 when no reply came, 2 on a bad name or client key. */
export async function traceRoute(
  { values, str }: TraceArgs,
  { identity, timeoutMs }: { identity: string; timeoutMs: number },
  out: Output,
): Promise<number> {
  const stack = localStack(process.stderr);
  const { cluster, server } = federationTarget(values, stack);
  const collective = values.collective ?? stack?.collective ?? "mcollective";
  let route: Route;
  try {
    route = {
      identity,
      cluster,
      collective,
      target: nodeSubject(collective, identity),
      inbound: federationSubject(cluster),
    };
  } catch (err) {
    process.stderr.write(`choria-edge trace: ${(err as Error).message}\n`);
    return 2;
  }
  const client = await loadClient(str, stack);
  if (typeof client === "string") {
    process.stderr.write(`choria-edge trace: ${client}\n`);
    return 2;
  }
  const bus = await connectClient("trace", str, server, stack, {
    name: `choria-edge-trace_${client.senderid}`,
    stderr: process.stderr,
  });
  if (typeof bus === "number") return bus;
  try {
    const report = await trace(bus, client, route, timeoutMs);
    if (typeof report === "string") {
      process.stderr.write(`choria-edge trace: ${report}\n`);
      return 1;
    }
    out.write(values.json ? `${JSON.stringify(report)}\n` : `${renderTrace(report)}\n`);
    return 0;
  } finally {
    await bus.close();
  }
}

interface Route {
  identity: string;
  cluster: string;
  collective: string;
  /** The node's own subject, which the broker forwards to. */
  target: string;
  /** The broker cluster's federation subject, where the request goes in. */
  inbound: string;
}

/** The client certificate and key to sign with, or what is wrong with them. */
async function loadClient(
  str: (flag: string) => string | undefined,
  stack: StackFile | undefined,
): Promise<ClientIdentity | string> {
  const certPath = str("cert") ?? stack?.keys.client_cert ?? join(pkiDir(), "rip.mcollective.pem");
  const keyPath = str("key") ?? stack?.keys.client_key ?? join(pkiDir(), "rip.mcollective-key.pem");
  try {
    // A default file is the demo PKI's, which a command makes; a named one is the caller's to fix.
    const demo = (flag: string) =>
      str(flag) === undefined ? { made: DEMO_PKI_MADE, instead: `--${flag}` } : {};
    const certPem = await readNamedFile(certPath, { what: "client certificate", ...demo("cert") });
    const keyPem = await readNamedFile(keyPath, { what: "client key", ...demo("key") });
    const signer = await loadSigner({ certPem, keyPem });
    return { signer, callerid: `choria=${signer.certname}`, senderid: signer.certname };
  } catch (err) {
    return err instanceof FileProblem
      ? err.message
      : `cannot load the client certificate ${certPath} and key ${keyPath} (${(err as Error).message}); pass another with --cert and --key`;
  }
}

/** One ping through the brokers with seen-by recording on: the route it took, or why there is none. */
async function trace(
  bus: NatsBus,
  client: ClientIdentity,
  route: Route,
  timeoutMs: number,
): Promise<TraceReport | string> {
  const { identity, collective } = route;
  const signed = await signRpcRequest(client, {
    agent: "rpcutil",
    action: "ping",
    collective,
    filter: { identity: [identity] },
  });
  const requestId = signed.request.envelope.requestid;
  const inbox = replySubject(collective, client.callerid, requestId);
  const url = bus.connectedUrl();
  const hop: SeenByHop = [url, client.senderid, url];
  const [packet] = federatedPackets(signed, [route.target], { replyTo: inbox, sender: client.senderid, hop });
  const reply = new Promise<Uint8Array | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    const sub = bus.subscribe(inbox, (msg) => {
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(msg.data);
    });
  });
  await bus.flush();
  const started = performance.now();
  if (!bus.publish(route.inbound, encodeTransport(packet!)))
    throw new Error("the NATS client refused the publish");
  const body = await reply;
  const roundTripMs = performance.now() - started;
  if (body === undefined)
    return `no reply from ${identity} within ${timeoutMs} ms (is a broker of cluster ${route.cluster} running, and the node up?)`;
  const opened = await openReply(body);
  if (!opened.ok) return `the reply could not be opened: ${opened.error.message}`;
  const hops = (opened.value.transport.headers["seen-by"] ?? []) as SeenByHop[];
  const rpc = opened.value.rpc;
  return {
    identity,
    cluster: route.cluster,
    requestId,
    roundTripMs,
    hops: describeHops(hops, { client: client.senderid, node: opened.value.sender }),
    status: rpc
      ? `${rpc.statusmsg} (statuscode ${rpc.statuscode}) from ${opened.value.sender}`
      : opened.value.payload,
  };
}
