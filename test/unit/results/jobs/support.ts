// Real Choria replies without NATS: a signed request handed to a NodeHost, whose replies are the bytes nodes
// would publish. Shared by the unit and integration tests and the benchmark of async jobs.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type ClientIdentity,
  directPacket,
  type RpcCall,
  signRpcRequest,
} from "../../../../lib/client/request.ts";
import { generateFleet, type NodeIdentity } from "../../../../lib/node/fleet.ts";
import { NodeHost, type OutgoingReply } from "../../../../lib/node/responder.ts";
import { decodeBase64Text, encodeBase64Text } from "../../../../lib/protocol/base64.ts";
import { nodeSubject } from "../../../../lib/protocol/subjects.ts";
import { encodeTransport } from "../../../../lib/protocol/transport.ts";
import type { NewJob } from "../../../../lib/results/jobs/model.ts";
import { TrustStore } from "../../../../lib/security/certs.ts";
import { loadSigner, sealReply } from "../../../../lib/security/choria.ts";
import { verifyWebhook } from "../../../../lib/security/webhooks/mod.ts";
import { testPki } from "../../../support/pki.ts";

export const COLLECTIVE = "mcollective";
export const CALLER = "key-ci";

export interface Nodes {
  client: ClientIdentity;
  fleet: NodeIdentity[];
  host: NodeHost;
  trust: TrustStore;
}

export async function simulatedNodes(count: number, seed = 7): Promise<Nodes> {
  const pki = await testPki();
  const trust = TrustStore.fromPem(pki.caPem);
  const fleet = generateFleet({ count, seed });
  return {
    client: {
      signer: await loadSigner(pki.gateway),
      callerid: "choria=gateway.privileged.mcollective",
      senderid: "gateway.example.net",
    },
    fleet,
    host: new NodeHost({ fleet, trust }),
    trust,
  };
}

/** A signed request to `identities` with reply-to `replyTo`: the packet, and the request id it carries. */
export async function signedRequest(
  nodes: Nodes,
  call: Omit<RpcCall, "collective">,
  replyTo: string,
  requestId?: string,
): Promise<{ body: string; requestId: string }> {
  const signed = await signRpcRequest(nodes.client, {
    collective: COLLECTIVE,
    ...call,
    ...(requestId === undefined ? {} : { requestId }),
  });
  return {
    body: encodeTransport(directPacket(signed, { replyTo, sender: nodes.client.senderid })),
    requestId: signed.request.envelope.requestid,
  };
}

/** What the nodes publish in answer to a request sent to each of `identities` directly. */
export async function repliesOf(
  nodes: Nodes,
  body: string,
  identities: readonly string[],
): Promise<OutgoingReply[]> {
  const replies: OutgoingReply[] = [];
  for (const identity of identities) {
    const handled = await nodes.host.handle(nodeSubject(COLLECTIVE, identity), body, "nats://127.0.0.1:4222");
    if (!handled.ok) throw new Error(`${identity} dropped the request: ${handled.detail}`);
    replies.push(...handled.replies);
  }
  return replies;
}

/**
 * A node's reply changed as anyone on the collective can change one, Choria v1 replies being hashed, not
 * signed: its RPC data replaced by `data` (JSON text) and/or its sender by `sender`, then hashed again.
 */
export async function forgedReply(
  reply: string,
  change: { data?: string; sender?: string },
): Promise<string> {
  const transport = JSON.parse(reply) as { data: string };
  const secure = JSON.parse(decodeBase64Text(transport.data)!) as { message: string };
  const inner = JSON.parse(secure.message) as { message: string; envelope: { senderid: string } };
  const rpc =
    change.data === undefined
      ? inner.message
      : inner.message.replace(/"data":\{.*\}\}$/, `"data":${change.data}}`);
  if (change.data !== undefined && rpc === inner.message)
    throw new Error("the reply has no RPC data to replace");
  const envelope = { ...inner.envelope, senderid: change.sender ?? inner.envelope.senderid };
  transport.data = encodeBase64Text(await sealReply(JSON.stringify({ ...inner, message: rpc, envelope })));
  return JSON.stringify(transport);
}

export function newJob(overrides: Partial<NewJob> & { request_id: string }): NewJob {
  return {
    caller: CALLER,
    collective: COLLECTIVE,
    agent: "rpcutil",
    action: "ping",
    timeout_ms: 60_000,
    ...overrides,
  };
}

export interface Delivery {
  id: string;
  body: string;
  status: number;
  /** The Standard Webhooks signature checked out against the receiver's secret. */
  verified: boolean;
  /** The Host header it came with. */
  host: string;
}

export interface Receiver {
  readonly url: string;
  /** Every request received, with the status it was answered with. */
  readonly deliveries: Delivery[];
  /** Statuses to answer the next requests with, in order; 200 once they run out. */
  answer(...statuses: number[]): void;
  /** Stops listening: connections are refused, as from a receiver that is down. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** A callback receiver on 127.0.0.1 that verifies each delivery like a real one would. */
export async function startReceiver(secret: string): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const queued: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers = new Headers(req.headers as Record<string, string>);
      const verdict = await verifyWebhook(
        "standard-webhooks",
        { secrets: [secret] },
        { headers, body: new TextEncoder().encode(body) },
        { now: new Date() },
      );
      const verified = verdict.ok;
      const status = queued.shift() ?? 200;
      deliveries.push({
        id: headers.get("webhook-id") ?? "",
        body,
        status,
        verified,
        host: headers.get("host") ?? "",
      });
      res.writeHead(status).end();
    });
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const down = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    deliveries,
    answer: (...statuses) => queued.push(...statuses),
    down,
    up: () => listen(port),
    close: down,
  };
}
