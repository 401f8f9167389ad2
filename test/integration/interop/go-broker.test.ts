// Matrix 2 and 4: go-choria's own federation broker between our gateway and the member collective, then
// one of ours joining the same cluster beside it: both take a share of the requests, and a reply may come
// back through either.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningBroker } from "../../../functions/broker.ts";
import { choriaBinary } from "../../support/choria.ts";
import {
  ALL,
  type InteropGateway,
  rpc as rpcThrough,
  type Stack,
  startInteropGateway,
  startOurBroker,
  startStack,
} from "./support.ts";

let stack: Stack;
let edge: InteropGateway;

beforeAll(async () => {
  choriaBinary();
  stack = await startStack({ goBrokers: 1 });
  edge = await startInteropGateway(stack);
}, 60_000);

afterAll(async () => {
  await edge?.gateway.close();
  await stack?.stop();
});

const rpc = (body: Record<string, unknown>) => rpcThrough(edge, body);

/** Sum of one go-choria federation metric over its workers, from the broker's Prometheus listener. */
async function goMetric(name: string, labelFilter: string): Promise<number> {
  const text = await (await fetch(stack.goBrokers[0]!.metricsUrl)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labelFilter))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

describe("our gateway through go-choria's federation broker", () => {
  it("discovers and reaches every real server and simulated node", async () => {
    const answer = await rpc({ agent: "rpcutil", action: "ping" });
    expect(answer.replies.map((r) => r.identity).sort()).toEqual(ALL);
    expect(answer.summary).toMatchObject({ discovered: ALL.length, ok: ALL.length, no_reply: 0 });
  });

  it("a directed request to 200+ targets (two federated packets) reaches the ones that exist", async () => {
    const ghosts = Array.from({ length: 210 }, (_, i) => `ghost${i}.example.net`);
    const answer = await rpc({ agent: "rpcutil", action: "ping", nodes: [...ALL, ...ghosts], timeout: 2 });
    expect(answer.replies.map((r) => r.identity).sort()).toEqual(ALL);
    expect(answer.summary).toMatchObject({ ok: ALL.length, no_reply: ghosts.length });
  });

  it("the go-choria broker counted what it routed", async () => {
    expect(
      await goMetric("choria_federation_received_msgs", 'name="choria_request_transformer"'),
    ).toBeGreaterThanOrEqual(3);
    expect(
      await goMetric("choria_federation_received_msgs", 'name="choria_reply_transformer"'),
    ).toBeGreaterThanOrEqual(3 * ALL.length);
  });
});

describe("one go-choria broker and one of ours in the same cluster", () => {
  let ours: RunningBroker;

  beforeAll(async () => {
    ours = await startOurBroker(stack, "ours-mixed");
  });

  afterAll(async () => {
    await ours?.stop();
  });

  it("both take a share of requests and replies, and every request is answered in full", async () => {
    const goRequestsBefore = await goMetric(
      "choria_federation_received_msgs",
      'name="choria_request_transformer"',
    );
    const goRepliesBefore = await goMetric(
      "choria_federation_received_msgs",
      'name="choria_reply_transformer"',
    );
    // go-choria runs ten queue subscribers a side to our one, so ours sees about one packet in eleven:
    // 30 requests leave ours none about one time in eighteen. Keep asking (up to 300) until ours has
    // taken some, so the check is about sharing, not luck.
    let sent = 0;
    while (sent < 30 || (ours.broker.stats.snapshot("OK").federation.received === 0 && sent < 300)) {
      const answer = await rpc({ agent: "rpcutil", action: "ping", nodes: ALL, timeout: 3 });
      expect(answer.summary).toMatchObject({ ok: ALL.length, no_reply: 0 });
      sent++;
    }
    const stats = ours.broker.stats.snapshot("OK");
    const goRequests =
      (await goMetric("choria_federation_received_msgs", 'name="choria_request_transformer"')) -
      goRequestsBefore;
    const goReplies =
      (await goMetric("choria_federation_received_msgs", 'name="choria_reply_transformer"')) -
      goRepliesBefore;
    expect(stats.federation.received).toBeGreaterThan(0);
    expect(goRequests).toBeGreaterThan(0);
    expect(stats.federation.received + goRequests).toBe(sent);
    expect(stats.replies_routed).toBeGreaterThan(0);
    expect(goReplies).toBeGreaterThan(0);
    expect(stats.replies_routed + goReplies).toBe(sent * ALL.length);
  });
});
