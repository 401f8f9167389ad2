import { describe, expect, it } from "vitest";
import { describeHops, renderTrace } from "../../../lib/federation/trace.ts";

const F = "nats://fed:4222";
const C = "nats://coll:4222";

describe("describeHops", () => {
  it("names client, broker request and reply stages, node, and anything else", () => {
    const hops = describeHops(
      [
        [F, "client1", F],
        [F, "fb1 (choria_nats_ingest:0, choria_request_transformer:0, choria_nats_egest:0)", C],
        [C, "relay.example.net", C],
        [C, "node1", C],
        [C, "fb2 (choria_nats_ingest:0, choria_reply_transformer:0, choria_nats_egest:0)", F],
      ],
      { client: "client1", node: "node1" },
    );
    expect(hops.map((h) => h.role)).toEqual([
      "client",
      "broker (request)",
      "other",
      "node",
      "broker (reply)",
    ]);
    expect(hops[1]).toMatchObject({ in: F, out: C });
  });
});

describe("renderTrace", () => {
  it("prints one numbered line per hop and the round trip", () => {
    const text = renderTrace({
      identity: "node1",
      cluster: "C1",
      requestId: "r1",
      roundTripMs: 2.345,
      status: "OK (statuscode 0) from node1",
      hops: describeHops(
        [
          [F, "client1", F],
          [C, "node1", C],
        ],
        { client: "client1", node: "node1" },
      ),
    });
    expect(text.split("\n")).toEqual([
      "route of rpcutil#ping to node1 through federation cluster C1 (request r1)",
      "",
      `   1. client  ${F} → client1 → ${F}`,
      `   2. node    ${C} → node1 → ${C}`,
      "",
      "round trip 2.3 ms, 2 hops; reply: OK (statuscode 0) from node1",
    ]);
  });
});
