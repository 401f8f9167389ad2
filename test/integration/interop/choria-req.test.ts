// Matrix 3 and 6: the real `choria req` client. Federated (plugin.choria.federation.collectives) through
// two of our broker workers, and direct on the member collective, where our simulated nodes must answer
// it as the go-choria servers beside them do.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { choriaReq, writeClientConfig } from "../../support/choria.ts";
import { ALL, CLUSTER, REAL, type Stack, startStack } from "./support.ts";

let stack: Stack;
let federated: string;
let direct: string;

beforeAll(async () => {
  stack = await startStack({ ourBrokers: 2 });
  federated = await writeClientConfig({
    pki: stack.pki,
    natsUrl: stack.collective.url,
    federation: { cluster: CLUSTER, url: stack.federation.url },
    dir: stack.dir,
  });
  direct = await writeClientConfig({ pki: stack.pki, natsUrl: stack.collective.url, dir: stack.dir });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

const senders = (result: Awaited<ReturnType<typeof choriaReq>>) => result.replies.map((r) => r.sender).sort();
// `choria req` discovers for 2 s by default; one second is plenty on loopback.
const quick = ["--discovery-timeout", "1"];

for (const [mode, config] of [
  ["federated through our brokers", () => federated],
  ["direct on the collective", () => direct],
] as const) {
  describe(`choria req, ${mode}`, () => {
    it("rpcutil ping: every real server and simulated node answers", async () => {
      const result = await choriaReq(config(), ["rpcutil", "ping", ...quick]);
      expect(senders(result)).toEqual(ALL);
      expect(result.request_stats).toMatchObject({ discovered: ALL.length, ok: ALL.length, failed: 0 });
      expect(result.request_stats.no_responses).toEqual([]);
      expect(result.request_stats.unexpected_responses).toEqual([]);
    });

    it("fact, class and identity filters select the same nodes on both kinds", async () => {
      const cases: [string[], string[]][] = [
        [
          ["-F", "role=web"],
          ["go1", "go3", "sim1", "sim3"],
        ],
        [
          ["-F", "cores>=16"],
          ["go3", "sim2", "sim3"],
        ],
        [
          ["-C", "apache"],
          ["go1", "go3", "sim1"],
        ],
        [
          ["-I", "/^(go2|sim4)/"],
          ["go2", "sim4"],
        ],
        [
          ["-W", "role=web nginx"],
          ["go3", "sim3"],
        ],
      ];
      for (const [flags, expected] of cases) {
        const result = await choriaReq(config(), ["rpcutil", "ping", ...quick, ...flags]);
        expect({ flags, senders: senders(result) }).toEqual({
          flags,
          senders: expected.map((n) => `${n}.example.net`),
        });
      }
    });

    it("rpcutil inventory answers in the shape the client renders, from both kinds", async () => {
      const result = await choriaReq(config(), [
        "rpcutil",
        "inventory",
        ...quick,
        "-I",
        "go1.example.net",
        "-I",
        "sim1.example.net",
      ]);
      expect(senders(result)).toEqual(["go1.example.net", "sim1.example.net"]);
      for (const reply of result.replies) {
        expect(reply.statuscode).toBe(0);
        expect(reply.data).toMatchObject({
          agents: expect.arrayContaining(["rpcutil", "discovery"]),
          collectives: ["mcollective"],
          main_collective: "mcollective",
        });
      }
      const go1 = result.replies.find((r) => r.sender === "go1.example.net")!;
      expect(go1.data.facts).toEqual(REAL[0]!.facts);
    });

    it("get_fact with an input answers alike from both kinds", async () => {
      const withInput = await choriaReq(config(), [
        "rpcutil",
        "get_fact",
        "fact=country",
        ...quick,
        "-I",
        "/^(go1|sim2)/",
      ]);
      expect(withInput.replies.map((r) => [r.sender, r.statuscode, r.data]).sort()).toEqual([
        ["go1.example.net", 0, { fact: "country", value: "de" }],
        ["sim2.example.net", 0, { fact: "country", value: "de" }],
      ]);
    });
  });
}

it("the federated runs went through our brokers, both of them, with nothing refused", () => {
  for (const broker of stack.brokers) {
    const stats = broker.broker.stats.snapshot("OK");
    expect(stats.federation.received).toBeGreaterThan(0);
    expect(Object.values(stats.refused).reduce((a, b) => a + (b ?? 0), 0)).toBe(0);
  }
});
