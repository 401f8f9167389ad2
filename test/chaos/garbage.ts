// Malformed NATS packets, by the receiver they are aimed at. Every kind is something a receiver must refuse
// (none can be routed, answered or stored), and each is cheap to make so that 100,000 take seconds.

import { JOB_REPLY_MARKER, newJobId } from "../../lib/results/jobs/subjects.ts";
import { CLUSTER, COLLECTIVE, federatedRequest, requestId } from "../integration/federation/support.ts";

const encoder = new TextEncoder();
type Make = (i: number) => string | Uint8Array;

const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
const notUtf8 = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0xc3, 0x28, 0x7d]);
const withHeaders = (headers: Record<string, unknown>) => {
  const packet = federatedRequest(requestId(), [`${COLLECTIVE}.broadcast.agent.rpcutil`]);
  return JSON.stringify({ ...packet, headers: { ...packet.headers, ...headers } });
};
/** A packet with a header nested `levels` deep, spliced in as text so that nothing walks it here. */
const deep = (levels: number) => withHeaders({}).replace(/}}$/, `,"x":${nested(levels)}}}`);
const reply = (federation: Record<string, unknown>) =>
  JSON.stringify({ protocol: "choria:transport:1", data: "e30=", headers: { mc_sender: "n1", federation } });

/** The same malformed forms every receiver is sent. */
const common: Make[] = [
  (i) => `{not json ${i}`,
  () => notUtf8,
  () => "[]",
  (i) => String(i),
  () => "",
  () => "null",
  () => `{"protocol":"choria:transport:1","data":5,"headers":{}}`,
  () => deep(200),
  (i) => "\u0000".repeat(i % 64),
];

export const FEDERATION_SUBJECT = `choria.federation.${CLUSTER}.federation`;
export const COLLECTIVE_SUBJECT = `choria.federation.${CLUSTER}.collective`;

/** Requests a broker must refuse on its federation side. */
export const federationSide: Make[] = [
  ...common,
  () => withHeaders({ federation: undefined }),
  () => withHeaders({ federation: { req: requestId(), target: [] } }),
  () => withHeaders({ federation: { req: requestId(), target: [`${COLLECTIVE}.>`] } }),
  () => withHeaders({ federation: { req: requestId(), target: [FEDERATION_SUBJECT] } }),
  () => withHeaders({ "reply-to": undefined }),
  () => withHeaders({ "reply-to": "not a subject" }),
  () => withHeaders({ "reply-to": "$JS.API.STREAM.DELETE.KV_choria_edge_jobs" }),
  () => withHeaders({ "seen-by": Array.from({ length: 50 }, (_, n) => [`nats://h${n}`, `b${n}`, "x"]) }),
  () => withHeaders({ federation: { req: requestId(), target: ["x"], "reply-to": "mcollective.reply.a.b" } }),
  () => JSON.stringify({ protocol: "choria:transport:9", data: "e30=", headers: {} }),
];

/** Rare and big: over the 1 MiB limit, and over 10,000 targets. */
export const federationSideLarge: Make[] = [
  () => withHeaders({ "x-pad": "x".repeat(1024 * 1024 + 1) }),
  () =>
    withHeaders({
      federation: {
        req: requestId(),
        target: Array.from({ length: 10_001 }, (_, n) => `${COLLECTIVE}.node.n${n}`),
      },
    }),
];

/** Replies a broker must refuse on its collective side. */
export const collectiveSide: Make[] = [
  ...common,
  () => JSON.stringify(federatedRequest(requestId(), [`${COLLECTIVE}.broadcast.agent.rpcutil`])),
  () => reply({ req: requestId() }),
  () => reply({ req: requestId(), "reply-to": "nope" }),
  () => reply({ req: requestId(), "reply-to": `othercoll.reply.a.${requestId()}` }),
  () => reply({ req: requestId(), "reply-to": "$SYS.REQ.SERVER.PING" }),
];

/** Requests a node must drop before it answers. */
export const nodeSide: Make[] = [
  ...common,
  () =>
    `{"protocol":"choria:transport:1","data":"!!not base64!!","headers":{"reply-to":"mcollective.reply.a.b"}}`,
  () =>
    JSON.stringify({
      protocol: "choria:transport:1",
      data: btoa("{}"),
      headers: { "reply-to": "x.reply.a.b" },
    }),
  () =>
    JSON.stringify({
      protocol: "choria:transport:1",
      data: btoa(
        JSON.stringify({
          protocol: "choria:secure:request:1",
          message: "{}",
          signature: "AA==",
          pubcert: "x",
        }),
      ),
      headers: { "reply-to": `${COLLECTIVE}.reply.a.${requestId()}` },
    }),
  () => withHeaders({ "reply-to": "$JS.API.>" }),
];

/** Replies the collector must refuse: not a reply, too deep, for a job that does not exist. */
export const collectorSide: Make[] = [
  ...common,
  () => JSON.stringify(federatedRequest(requestId(), [])),
  () => reply({ req: requestId() }),
];

export function collectorSubject(i: number): string {
  // Every 7th names no job at all; the rest name a job nobody made.
  return i % 7 === 0
    ? `${COLLECTIVE}.reply.37bdf08389145a56c13096c178802d3b.${JOB_REPLY_MARKER}.short`
    : `${COLLECTIVE}.reply.37bdf08389145a56c13096c178802d3b.${JOB_REPLY_MARKER}.${newJobId()}`;
}

export function bytes(make: Make, i: number): Uint8Array {
  const body = make(i);
  return typeof body === "string" ? encoder.encode(body) : body;
}
