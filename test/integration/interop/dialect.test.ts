// The 2017 dialect both ways: a gateway whose cluster is set to `seed` sends the older connector's
// packets (no `protocol`, a flat seen-by) through our brokers; simulated nodes answer in kind, and the
// replies come back in that dialect. go-choria 0.30 servers read only choria:transport:1 and stay silent,
// which is why the dialect is a per-cluster choice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeTransport, dialectOf } from "../../../lib/protocol/transport.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import {
  COLLECTIVE,
  type InteropGateway,
  REAL,
  rpc,
  SIMULATED,
  type Stack,
  startInteropGateway,
  startStack,
} from "./support.ts";

let stack: Stack;
let seed: InteropGateway;
let tap: MessageBus;
const requests: string[] = [];
const replies: string[] = [];

beforeAll(async () => {
  stack = await startStack({ ourBrokers: 1 });
  seed = await startInteropGateway(stack, { dialect: "seed" });
  tap = await connectNats({ servers: stack.collective.url, name: "dialect-tap", timeoutMs: 2000 });
  const record = (into: string[]) => (msg: { data: Uint8Array }) => {
    const decoded = decodeTransport(msg.data);
    into.push(decoded.ok ? dialectOf(decoded.value) : "invalid");
  };
  tap.subscribe(`${COLLECTIVE}.node.>`, record(requests));
  tap.subscribe(`${COLLECTIVE}.broadcast.>`, record(requests));
  tap.subscribe("choria.federation.>", record(replies));
  await tap.flush();
}, 60_000);

afterAll(async () => {
  await tap?.close();
  await seed?.gateway.close();
  await stack?.stop();
});

describe("a cluster on the 2017 dialect", () => {
  it("discovery and the RPC go out as seed packets; simulated nodes answer in kind; go-choria servers stay silent", async () => {
    const everyone = [...REAL.map((s) => s.identity), ...SIMULATED.map((n) => n.identity)];
    const answer = await rpc(seed, { agent: "rpcutil", action: "ping", nodes: everyone, timeout: 2 });
    expect(answer.replies.map((r) => [r.identity, r.statuscode]).sort()).toEqual(
      SIMULATED.map((n) => [n.identity, 0]).sort(),
    );
    expect(answer.no_reply.sort()).toEqual(REAL.map((s) => s.identity).sort());
    expect(requests.length).toBeGreaterThan(0);
    expect(new Set(requests)).toEqual(new Set(["seed"]));
    // Replies travel the collective side to the broker in the request's dialect.
    expect(replies.length).toBeGreaterThanOrEqual(SIMULATED.length);
    expect(new Set(replies)).toEqual(new Set(["seed"]));
  });

  it("discovery in the seed dialect finds the simulated nodes", async () => {
    const answer = await rpc(seed, { agent: "rpcutil", action: "ping", filter: { fact: ["role=web"] } });
    expect(answer.replies.map((r) => r.identity).sort()).toEqual(["sim1.example.net", "sim3.example.net"]);
  });
});
