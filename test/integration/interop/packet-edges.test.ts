// Packets at the edges of the v1 transport schema, sent to go-choria's federation broker (cluster C1) and
// to ours (cluster C2) on the same servers: where go-choria routes a packet, ours must too, unless the
// README's Compatibility table says why not.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBroker } from "../../../functions/broker.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { COLLECTIVE, type Stack, startOurBroker, startStack } from "./support.ts";

let stack: Stack;
let ours: RunningBroker;
let collective: MessageBus;
const arrived: { subject: string; body: Record<string, unknown> }[] = [];

beforeAll(async () => {
  stack = await startStack({ goBrokers: 1 });
  ours = await startOurBroker(stack, "ours", "C2");
  collective = await connectNats({ servers: stack.collective.url, name: "edge-probe", timeoutMs: 2000 });
  collective.subscribe(`${COLLECTIVE}.node.>`, (msg) => {
    arrived.push({ subject: msg.subject, body: JSON.parse(new TextDecoder().decode(msg.data)) });
  });
  await collective.flush();
}, 60_000);

afterAll(async () => {
  await collective?.close();
  await ours?.stop();
  await stack?.stop();
});

const REQ = "0123456789abcdef0123456789abcdef";

function packet(target: string, change: (headers: Record<string, unknown>) => void): string {
  const headers: Record<string, unknown> = {
    "reply-to": `${COLLECTIVE}.reply.37bdf08389145a56c13096c178802d3b.${REQ}`,
    mc_sender: "client.example.net",
    "seen-by": [["nats://fed:4222", "client.example.net", "nats://fed:4222"]],
    federation: { req: REQ, target: [target] },
  };
  change(headers);
  return JSON.stringify({ protocol: "choria:transport:1", data: btoa("{}"), headers });
}

/** Sends the variant through both clusters; says which of the two delivered it to the collective. */
async function route(name: string, change: (headers: Record<string, unknown>) => void) {
  const targets = {
    go: `${COLLECTIVE}.node.probe-go-${name}`,
    ours: `${COLLECTIVE}.node.probe-ours-${name}`,
  };
  stack.client.publish("choria.federation.C1.federation", packet(targets.go, change));
  stack.client.publish("choria.federation.C2.federation", packet(targets.ours, change));
  await stack.client.flush();
  await new Promise((resolve) => setTimeout(resolve, 400));
  return {
    go: arrived.filter((a) => a.subject === targets.go).length,
    ours: arrived.filter((a) => a.subject === targets.ours).length,
  };
}

describe("edge packets: go-choria's broker and ours route the same ones", () => {
  it("a plain federated request: both route it", async () => {
    expect(await route("plain", () => {})).toEqual({ go: 1, ours: 1 });
  });

  it("a federation.req that is not 32 hex characters: both route it", async () => {
    expect(
      await route("shortreq", (h) => {
        h.federation = { ...(h.federation as object), req: "abc-123" };
      }),
    ).toEqual({ go: 1, ours: 1 });
  });

  it("an empty mc_sender: both route it", async () => {
    expect(
      await route("nosender", (h) => {
        h.mc_sender = "";
      }),
    ).toEqual({ go: 1, ours: 1 });
  });

  it("a seen-by hop of two names: both route it", async () => {
    expect(
      await route("twohop", (h) => {
        h["seen-by"] = [["nats://fed:4222", "client.example.net"]];
      }),
    ).toEqual({ go: 1, ours: 1 });
  });

  it("a reply-to outside any collective's reply space: go-choria routes it, ours refuses (deliberate)", async () => {
    expect(
      await route("badreply", (h) => {
        h["reply-to"] = "x.reply.y";
      }),
    ).toEqual({ go: 1, ours: 0 });
    expect(ours.broker.stats.snapshot("OK").refused.bad_reply_to).toBe(1);
  });
});
