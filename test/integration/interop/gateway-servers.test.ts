// Matrix 1: our gateway → two of our broker workers → real go-choria servers and simulated nodes in one
// member collective. The servers check the gateway's signature with go-choria's own x509 file provider
// and filter with go-choria's own code, so each case below is an answer from the real thing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { choriaBinary } from "../../support/choria.ts";
import {
  ALL,
  type InteropGateway,
  REAL,
  type RpcAnswer,
  rpc as rpcThrough,
  type Stack,
  startInteropGateway,
  startStack,
} from "./support.ts";

let stack: Stack;
let edge: InteropGateway;

beforeAll(async () => {
  choriaBinary();
  stack = await startStack({ ourBrokers: 2 });
  edge = await startInteropGateway(stack);
}, 60_000);

afterAll(async () => {
  await edge?.gateway.close();
  await stack?.stop();
});

const rpc = (body: Record<string, unknown>) => rpcThrough(edge, body);

const who = (answer: RpcAnswer) => answer.replies.map((r) => r.identity).sort();

describe("gateway → our brokers → go-choria servers and simulated nodes", () => {
  it("rpcutil ping: every real server and simulated node answers OK, nobody is missing", async () => {
    const answer = await rpc({ agent: "rpcutil", action: "ping" });
    expect(who(answer)).toEqual(ALL);
    expect(answer.summary).toMatchObject({ discovered: ALL.length, ok: ALL.length, failed: 0, no_reply: 0 });
    for (const reply of answer.replies) {
      expect(reply.statuscode).toBe(0);
      expect(typeof reply.data.pong).toBe("number");
    }
  });

  it("rpcutil inventory from a real server carries its facts, classes and agents", async () => {
    const answer = await rpc({ agent: "rpcutil", action: "inventory", nodes: ["go1.example.net"] });
    expect(answer.replies).toHaveLength(1);
    const data = answer.replies[0]!.data;
    expect(data.facts).toEqual(REAL[0]!.facts);
    expect(data.classes).toEqual(REAL[0]!.classes);
    expect(data.agents).toEqual(expect.arrayContaining(["rpcutil", "discovery"]));
    expect(data.collectives).toEqual(["mcollective"]);
  });

  // Each row: a filter and the nodes it must select, real and simulated alike (worked out by hand from
  // the facts in support.ts, not by our matcher).
  const cases: [string, Record<string, unknown>, string[]][] = [
    ["fact equality", { fact: ["role=web"] }, ["go1", "go3", "sim1", "sim3"]],
    ["fact inequality", { fact: ["country!=nl"] }, ["go1", "sim1", "sim2", "sim4"]],
    ["nested fact", { fact: ["os.family=redhat"] }, ["go2", "sim2"]],
    ["numeric fact", { fact: ["cores>=16"] }, ["go3", "sim2", "sim3"]],
    ["fact regex", { fact: ["country=~/^(de|uk)$/"] }, ["go1", "sim1", "sim2", "sim4"]],
    ["class", { class: ["apache"] }, ["go1", "go3", "sim1"]],
    ["class regex", { class: ["/^role::/"] }, ["go1", "go2", "sim2"]],
    ["identity", { identity: ["go2.example.net", "sim3.example.net"] }, ["go2", "sim3"]],
    ["identity regex", { identity: ["/^(go1|sim4)\\./"] }, ["go1", "sim4"]],
    ["two kinds at once", { fact: ["role=web"], class: ["nginx"] }, ["go3", "sim3"]],
    ["compound", { compound: "with('apache') or with('country=uk')" }, ["go1", "go3", "sim1", "sim4"]],
  ];
  for (const [name, filter, expected] of cases) {
    it(`discovery with a ${name} filter selects the same nodes on both kinds`, async () => {
      const answer = await rpc({ agent: "rpcutil", action: "ping", filter });
      expect(who(answer)).toEqual(expected.map((n) => `${n}.example.net`));
      expect(answer.summary).toMatchObject({ discovered: expected.length, no_reply: 0 });
    });
  }

  it("an unknown action fails on every node with the same status code and message", async () => {
    const answer = await rpc({ agent: "rpcutil", action: "no_such_action" });
    expect(who(answer)).toEqual(ALL);
    expect(answer.summary).toMatchObject({ ok: 0, failed: ALL.length });
    for (const reply of answer.replies) {
      expect(reply.statuscode).toBe(2);
      expect(reply.statusmsg).toBe("Unknown action no_such_action for agent rpcutil");
    }
  });

  it("a directed request names the silent node in no_reply and reports each node's own status", async () => {
    const answer = await rpc({
      agent: "rpcutil",
      action: "get_fact",
      data: { fact: "country" },
      nodes: ["go2.example.net", "sim1.example.net", "gone.example.net"],
      timeout: 2,
    });
    expect(answer.no_reply).toEqual(["gone.example.net"]);
    const values = Object.fromEntries(answer.replies.map((r) => [r.identity, r.data]));
    expect(values).toEqual({
      "go2.example.net": { fact: "country", value: "nl" },
      "sim1.example.net": { fact: "country", value: "de" },
    });
  });

  it("get_fact without its input: OK with an empty fact from both kinds (go-choria checks no inputs)", async () => {
    const answer = await rpc({
      agent: "rpcutil",
      action: "get_fact",
      nodes: ["go1.example.net", "sim1.example.net"],
    });
    expect(answer.replies.map((r) => [r.identity, r.statuscode, r.data]).sort()).toEqual([
      ["go1.example.net", 0, { fact: "", value: null }],
      ["sim1.example.net", 0, { fact: "", value: null }],
    ]);
  });

  it("both broker workers carried requests and replies", () => {
    for (const broker of stack.brokers) {
      const stats = broker.broker.stats.snapshot("OK");
      expect(stats.federation.received).toBeGreaterThan(0);
      expect(stats.replies_routed).toBeGreaterThan(0);
      expect(stats.refused).toEqual(Object.fromEntries(Object.keys(stats.refused).map((k) => [k, 0])));
    }
  });
});
