// A rogue on a member network answers discovery with a sender id no node subject can carry (a space, a
// wildcard): the gateway leaves that sender out and asks the nodes that answered properly, instead of
// failing the whole request. It also answers a directed request in a real node's name: the sync answer
// names that node as conflicting rather than passing either reply off as the only one.
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { decodeRequest, encodeReply, newReply } from "../../../lib/protocol/message.ts";
import { encodeRpcReply, PONG_PAYLOAD, StatusCode } from "../../../lib/protocol/rpc.ts";
import { encodeSecureReply, secureRequestOf, transportData } from "../../../lib/protocol/secure.ts";
import { nodeSubject } from "../../../lib/protocol/subjects.ts";
import { decodeTransport } from "../../../lib/protocol/transport.ts";
import { replyHash } from "../../../lib/security/choria.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import {
  CLUSTER,
  type Federation,
  gatewaySettings,
  signedInit,
  startFederation,
  type TestKeys,
  testKeys,
} from "./support.ts";

let federation: Federation;
let keys: TestKeys;
let gateway: RunningGateway;
let rogue: MessageBus;
const ROGUE_IDS = ["evil node.example.net", "evil.*.example.net"];

beforeAll(async () => {
  [federation, keys] = await Promise.all([startFederation(5), testKeys()]);
  gateway = await startGateway(await gatewaySettings(federation.federation.url, keys.json), {
    log: () => {},
    audit: () => {},
  });
  rogue = await connectNats({ servers: federation.collective.url, name: "rogue", timeoutMs: 2000 });
  rogue.subscribe("mcollective.broadcast.agent.discovery", (msg) => {
    for (const id of ROGUE_IDS) void answerAs(msg.data, id, PONG_PAYLOAD);
  });
  // In the name of the first node: a second reply to its directed requests, with other data.
  const impersonated = federation.fleet[0]!.identity;
  const body = encodeRpcReply({
    action: "ping",
    statuscode: StatusCode.OK,
    statusmsg: "OK",
    data: { pong: 1 },
  });
  rogue.subscribe(
    nodeSubject("mcollective", impersonated),
    (msg) => void answerAs(msg.data, impersonated, body),
  );
  await rogue.flush();
});

/** Replies to a request seen on the member network as `sender`, with `payload` as the reply message. */
async function answerAs(data: Uint8Array, sender: string, payload: string): Promise<void> {
  const packet = decodeTransport(data);
  if (!packet.ok) return;
  const secure = secureRequestOf(packet.value);
  if (!secure.ok) return;
  const request = decodeRequest(secure.value.message);
  const replyTo = packet.value.headers["reply-to"];
  if (!request.ok || replyTo === undefined) return;
  const answer = encodeReply(newReply(request.value, sender, payload));
  const sealed = encodeSecureReply(answer, await replyHash(answer));
  const headers = { ...packet.value.headers, mc_sender: sender };
  rogue.publish(replyTo, JSON.stringify({ ...packet.value, data: transportData(sealed), headers }));
}

afterAll(async () => {
  await rogue?.close();
  await gateway?.close();
  await federation?.stop();
});

it("leaves out discovery replies whose sender cannot be addressed and asks the rest", async () => {
  const url = `${gateway.url}/v1/rpc`;
  const res = await fetch(
    url,
    await signedInit(
      url,
      { cluster: CLUSTER, agent: "rpcutil", action: "ping", discovery_timeout: 1 },
      keys.admin,
    ),
  );
  expect(res.status).toBe(200);
  const answer = (await res.json()) as { summary: Record<string, unknown>; replies: { identity: string }[] };
  const expected = federation.fleet.map((n) => n.identity).sort();
  expect(answer.replies.map((r) => r.identity).sort()).toEqual(expected);
  expect(answer.summary).toMatchObject({ discovered: expected.length, ok: expected.length, no_reply: 0 });
});

it("names a node that answered a sync request twice with different replies, and keeps one reply for it", async () => {
  const impersonated = federation.fleet[0]!.identity;
  const others = federation.fleet.slice(1, 3).map((n) => n.identity);
  const url = `${gateway.url}/v1/rpc`;
  const res = await fetch(
    url,
    await signedInit(
      url,
      // A silent target keeps the collection open to its timeout, so the later of the two replies is
      // always seen (the request would otherwise end with the third distinct answer).
      {
        cluster: CLUSTER,
        agent: "rpcutil",
        action: "ping",
        nodes: [impersonated, ...others, "ghost.example.net"],
        timeout: 1,
      },
      keys.admin,
    ),
  );
  expect(res.status).toBe(200);
  const answer = (await res.json()) as {
    summary: Record<string, unknown>;
    replies: { identity: string }[];
    conflicting: string[];
  };
  expect(answer.replies.map((r) => r.identity).sort()).toEqual([impersonated, ...others].sort());
  expect(answer.conflicting).toEqual([impersonated]);
  expect(answer.summary).toMatchObject({ ok: 3, conflicts: 1, no_reply: 1 });
});
