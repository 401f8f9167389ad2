// Real Choria replies without NATS: a signed request handed to a NodeHost, whose replies are the bytes nodes
// would publish. Shared by the unit and integration tests and the benchmark of async jobs.
import {
  type ClientIdentity,
  directPacket,
  type RpcCall,
  signRpcRequest,
} from "../../../../lib/client/request.ts";
import { generateFleet, type NodeIdentity } from "../../../../lib/node/fleet.ts";
import { NodeHost, type OutgoingReply } from "../../../../lib/node/responder.ts";
import { nodeSubject } from "../../../../lib/protocol/subjects.ts";
import { encodeTransport } from "../../../../lib/protocol/transport.ts";
import type { NewJob } from "../../../../lib/results/jobs/model.ts";
import { TrustStore } from "../../../../lib/security/certs.ts";
import { loadSigner } from "../../../../lib/security/choria.ts";
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
