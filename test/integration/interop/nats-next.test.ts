// The same federation on the newest nats-server the module proxy builds (the rest of the suite runs on
// Debian's 2.9.10): our gateway and brokers, go-choria servers, and `choria req` federated through ours.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  choriaReq,
  NATS_SERVER_NEXT_VERSION,
  natsServerNextBinary,
  writeClientConfig,
} from "../../support/choria.ts";
import {
  ALL,
  CLUSTER,
  type InteropGateway,
  rpc,
  type Stack,
  startInteropGateway,
  startStack,
} from "./support.ts";

let stack: Stack;
let edge: InteropGateway;

beforeAll(async () => {
  stack = await startStack({ ourBrokers: 2, natsBinary: natsServerNextBinary() });
  edge = await startInteropGateway(stack);
}, 60_000);

afterAll(async () => {
  await edge?.gateway.close();
  await stack?.stop();
});

describe(`on nats-server ${NATS_SERVER_NEXT_VERSION}`, () => {
  it("the servers are the newer release", () => {
    expect(stack.client.connection.info?.version).toBe(NATS_SERVER_NEXT_VERSION.slice(1));
  });

  it("gateway discovery with a filter reaches real and simulated nodes through our brokers", async () => {
    const answer = await rpc(edge, { agent: "rpcutil", action: "ping", filter: { fact: ["role=web"] } });
    expect(answer.replies.map((r) => r.identity).sort()).toEqual([
      "go1.example.net",
      "go3.example.net",
      "sim1.example.net",
      "sim3.example.net",
    ]);
  });

  it("choria req, federated through our brokers, hears every node", async () => {
    const config = await writeClientConfig({
      pki: stack.pki,
      natsUrl: stack.collective.url,
      federation: { cluster: CLUSTER, url: stack.federation.url },
      dir: stack.dir,
    });
    const result = await choriaReq(config, ["rpcutil", "ping", "--discovery-timeout", "1"]);
    expect(result.replies.map((r) => r.sender).sort()).toEqual(ALL);
  });
});
