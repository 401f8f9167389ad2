import { describe, expect, it } from "vitest";
import { directPacket, federatedPackets, type SignedRequest } from "../../../lib/client/request.ts";
import { gatewayConfigFrom, parseDialects } from "../../../lib/gateway/config.ts";
import { newRequest } from "../../../lib/protocol/message.ts";
import { decodeTransport, dialectOf, encodeTransport } from "../../../lib/protocol/transport.ts";

const signed: SignedRequest = {
  request: newRequest({
    agent: "rpcutil",
    collective: "mcollective",
    callerid: "choria=x",
    senderid: "gw",
    payload: "cGluZw==",
  }),
  data: btoa('{"protocol":"choria:secure:request:1"}'),
};
const targets = Array.from({ length: 450 }, (_, i) => `mcollective.node.n${i}.example.net`);
const options = {
  replyTo: "mcollective.reply.abc.def",
  sender: "gw",
  hop: ["nats://a:4222", "gw", "nats://a:4222"] as [string, string, string],
};

describe("request packets in either dialect", () => {
  it("v1 by default: protocol named, the sender's hop as a triple, 200 targets a packet", () => {
    const packets = federatedPackets(signed, targets, options);
    expect(packets.map((p) => p.headers.federation?.target?.length)).toEqual([200, 200, 50]);
    for (const packet of packets) {
      const decoded = decodeTransport(encodeTransport(packet));
      expect(decoded.ok && dialectOf(decoded.value)).toBe("v1");
      expect(packet.headers["seen-by"]).toEqual([options.hop]);
    }
  });

  it("seed: no protocol, seen-by a flat list of names, the same data, request id and chunks", () => {
    const packets = federatedPackets(signed, targets, { ...options, dialect: "seed" });
    expect(packets.map((p) => p.headers.federation?.target?.length)).toEqual([200, 200, 50]);
    for (const packet of packets) {
      const wire = JSON.parse(encodeTransport(packet)) as Record<string, unknown>;
      expect(wire).not.toHaveProperty("protocol");
      const decoded = decodeTransport(JSON.stringify(wire));
      expect(decoded.ok && dialectOf(decoded.value)).toBe("seed");
      expect(packet.headers["seen-by"]).toEqual(["nats://a:4222", "gw"]);
      expect(packet.data).toBe(signed.data);
      expect(packet.headers.federation?.req).toBe(signed.request.envelope.requestid);
      expect(packet.headers["reply-to"]).toBe(options.replyTo);
    }
  });

  it("an unfederated seed packet carries no federation header", () => {
    const packet = directPacket(signed, { replyTo: "r.reply.x.y", sender: "gw", dialect: "seed" });
    expect(packet).toEqual({ data: signed.data, headers: { "reply-to": "r.reply.x.y", mc_sender: "gw" } });
  });
});

describe("gateway dialect settings", () => {
  it("parses C2=seed;C3=v1 and refuses a dialect for a cluster it does not publish to", () => {
    expect(parseDialects("C2=seed;C3=v1")).toEqual({ C2: "seed", C3: "v1" });
    const ok = gatewayConfigFrom({
      clusters: { C1: ["mcollective"], C2: ["mcollective"] },
      dialects: { C2: "seed" },
    });
    expect(ok.ok && ok.config.dialects).toEqual({ C2: "seed" });
    expect(gatewayConfigFrom({ clusters: { C1: ["m"] }, dialects: { C9: "seed" } })).toEqual({
      ok: false,
      error: "dialects: C9 is not a configured cluster",
    });
    const bad = gatewayConfigFrom({ clusters: { C1: ["m"] }, dialects: { C1: "v2" as "v1" } });
    expect(bad.ok).toBe(false);
  });
});
