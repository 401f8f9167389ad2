import { describe, expect, it } from "vitest";
import { utf8 } from "../../../lib/protocol/base64.ts";
import { ProtocolError } from "../../../lib/protocol/errors.ts";
import {
  collectiveSubject,
  isFederationTarget,
  isReplySubject,
  parseSubject,
} from "../../../lib/protocol/subjects.ts";
import {
  decodeTransport,
  dialectOf,
  encodeTransport,
  isV1,
  newTransportV1,
  type TransportPacket,
  type TransportV1,
} from "../../../lib/protocol/transport.ts";
import { compact, fixtureText } from "./support.ts";

function transport(input: string | Uint8Array): TransportPacket {
  const decoded = decodeTransport(input);
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

describe("spec transport examples", () => {
  it.each([
    "spec-1.2-request-transport.json",
    "spec-1.3-reply-transport.json",
    "spec-6.1-federated-request-transport.json",
  ])("%s decodes as v1 and re-encodes byte for byte", (name) => {
    const text = fixtureText(name);
    const packet = transport(text);
    expect(dialectOf(packet)).toBe("v1");
    expect(packet.data).toBe(JSON.parse(text).data);
    expect(encodeTransport(packet)).toBe(compact(text));
  });

  it("§6.1: a client's federated request targets node subjects and asks for replies on its reply subject", () => {
    const packet = transport(fixtureText("spec-6.1-federated-request-transport.json"));
    expect(packet.headers.federation?.target?.every(isFederationTarget)).toBe(true);
    expect(isReplySubject(packet.headers["reply-to"]!)).toBe(true);
  });

  describe("§6.4 federated round trip", () => {
    const steps = (
      JSON.parse(fixtureText("spec-6.4-federated-round-trip.json")).steps as {
        subject: string;
        packet: TransportV1;
      }[]
    ).map((step) => ({ ...step, text: JSON.stringify(step.packet) }));

    it("every step decodes and re-encodes byte for byte", () => {
      for (const step of steps) expect(encodeTransport(transport(step.text))).toBe(step.text);
    });

    it("each step is published on the subject kind the spec says", () => {
      const kinds = steps.map((step) => {
        const parsed = parseSubject(step.subject);
        return parsed.ok ? parsed.value.kind : parsed.error.message;
      });
      expect(kinds).toEqual(["federation", "broadcast", "collective", "reply"]);
    });

    it("the broker moves reply-to into the federation header and back out, appending one hop each way", () => {
      const [client, broker, server, back] = steps.map((step) => transport(step.text) as TransportV1);
      expect(client!.headers.federation?.target?.every(isFederationTarget)).toBe(true);
      expect(broker!.headers["reply-to"]).toBe(collectiveSubject("C1"));
      expect(broker!.headers.federation?.["reply-to"]).toBe(client!.headers["reply-to"]);
      expect(broker!.headers.federation).not.toHaveProperty("target");
      expect(server!.headers).not.toHaveProperty("reply-to");
      expect(back!.headers).not.toHaveProperty("federation");
      expect(steps[3]!.subject).toBe(server!.headers.federation?.["reply-to"]);
      expect(broker!.data).toBe(client!.data);
      expect(back!.data).toBe(server!.data);
      const hops = [client, broker, server, back].map((p) => p!.headers["seen-by"]!);
      for (let i = 1; i < hops.length; i++) {
        expect(hops[i]!.length).toBe(hops[i - 1]!.length + 1);
        expect(hops[i]!.slice(0, -1)).toEqual(hops[i - 1]);
      }
    });
  });
});

describe("seed (2017) dialect", () => {
  it("decodes a packet without `protocol` and with a flat seen-by as seed, and re-encodes it", () => {
    const text = fixtureText("seed-federated-request-transport.json");
    const packet = transport(text);
    expect(dialectOf(packet)).toBe("seed");
    expect(isV1(packet)).toBe(false);
    expect(packet.headers["seen-by"]).toEqual(["nats://fed1.example.net:4222", "C1:1"]);
    expect(encodeTransport(packet)).toBe(compact(text));
  });

  it("refuses v1 hop triples in a seed packet and flat hops in a v1 packet", () => {
    expect(decodeTransport('{"data":"","headers":{"seen-by":[["a","b","c"]]}}')).toMatchObject({
      ok: false,
      error: { field: "headers.seen-by.0" },
    });
    expect(
      decodeTransport('{"protocol":"choria:transport:1","data":"","headers":{"seen-by":["a"]}}'),
    ).toMatchObject({
      ok: false,
      error: { field: "headers.seen-by.0" },
    });
  });
});

describe("decodeTransport refusals", () => {
  it.each([
    ["choria:transport:2", "unsupported_protocol"],
    ["io.choria.protocol.v2.transport", "unsupported_protocol"],
    ["io.choria.protocol.v3.transport", "unsupported_protocol"],
    ["choria:request:1", "invalid_field"],
    ["nonsense", "invalid_field"],
  ])("protocol %s → %s", (protocol, code) => {
    const decoded = decodeTransport(JSON.stringify({ protocol, data: "", headers: {} }));
    expect(decoded).toMatchObject({ ok: false, error: { layer: "transport", code, field: "protocol" } });
  });

  it.each([
    ["bad JSON", "{", "malformed_json", ""],
    ["empty body", "", "malformed_json", ""],
    ["JSON null", "null", "invalid_field", ""],
    ["a JSON array", "[]", "invalid_field", ""],
    ["numeric protocol", '{"protocol":1,"data":"","headers":{}}', "invalid_field", "protocol"],
    ["numeric data", '{"protocol":"choria:transport:1","data":1,"headers":{}}', "invalid_field", "data"],
    ["missing data", '{"protocol":"choria:transport:1","headers":{}}', "invalid_field", "data"],
    ["missing headers", '{"protocol":"choria:transport:1","data":""}', "invalid_field", "headers"],
    [
      "empty reply-to",
      '{"protocol":"choria:transport:1","data":"","headers":{"reply-to":""}}',
      "invalid_field",
      "headers.reply-to",
    ],
    [
      "a three-element hop with a number",
      '{"protocol":"choria:transport:1","data":"","headers":{"seen-by":[["a","b",1]]}}',
      "invalid_field",
      "headers.seen-by.0",
    ],
    [
      "an empty federation request id",
      '{"protocol":"choria:transport:1","data":"","headers":{"federation":{"req":""}}}',
      "invalid_field",
      "headers.federation.req",
    ],
    [
      "a non-array federation target",
      `{"protocol":"choria:transport:1","data":"","headers":{"federation":{"req":"${"a".repeat(32)}","target":"x"}}}`,
      "invalid_field",
      "headers.federation.target",
    ],
  ])("%s → %s at %j", (_name, text, code, field) => {
    const decoded = decodeTransport(text);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error).toBeInstanceOf(ProtocolError);
    expect(decoded.error).toMatchObject({ layer: "transport", code, field });
  });

  it("accepts what go-choria's broker routes although Choria's v1 schema refuses it", () => {
    const decoded = decodeTransport(
      '{"protocol":"choria:transport:1","data":"","headers":{"mc_sender":"","seen-by":[["a","b"]],"federation":{"req":"abc"}}}',
    );
    expect(decoded).toMatchObject({
      ok: true,
      // Go reads a hop into a three-element array, so a two-name hop travels on with an empty third.
      value: { headers: { mc_sender: "", "seen-by": [["a", "b", ""]], federation: { req: "abc" } } },
    });
  });

  it("refuses bodies over maxBytes before parsing, for text and bytes", () => {
    const text = fixtureText("spec-1.2-request-transport.json");
    expect(decodeTransport(text, { maxBytes: 64 })).toMatchObject({
      ok: false,
      error: { code: "too_large" },
    });
    expect(decodeTransport(utf8(text), { maxBytes: 64 })).toMatchObject({
      ok: false,
      error: { code: "too_large" },
    });
    const huge = `{"data":"${"A".repeat(2_000_000)}","headers":{}}`;
    expect(decodeTransport(huge, { maxBytes: 1_000_000 })).toMatchObject({
      ok: false,
      error: { code: "too_large" },
    });
    expect(decodeTransport(huge).ok).toBe(true);
  });

  it("decodes UTF-8 bytes and refuses invalid UTF-8", () => {
    expect(dialectOf(transport(utf8(fixtureText("spec-1.3-reply-transport.json"))))).toBe("v1");
    const invalid = utf8('{"data":"x","headers":{"mc_sender":"??"}}');
    invalid[invalid.indexOf(0x3f)] = 0xc3; // a lead byte followed by '?' is not UTF-8
    expect(decodeTransport(invalid)).toMatchObject({
      ok: false,
      error: { layer: "transport", code: "malformed_json" },
    });
  });
});

describe("newTransportV1", () => {
  it("rebuilds the spec's §6.1 federated request with go-choria's key order", () => {
    const text = fixtureText("spec-6.1-federated-request-transport.json");
    const expected = JSON.parse(text) as TransportV1;
    const built = newTransportV1({
      data: expected.data,
      sender: "rip.mcollective",
      replyTo: expected.headers["reply-to"],
      seenBy: expected.headers["seen-by"],
      federation: { req: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e", target: expected.headers.federation?.target },
    });
    expect(encodeTransport(built)).toBe(compact(text));
  });

  it("omits empty reply-to, seen-by, federation reply-to and target, as Go's omitempty does", () => {
    const built = newTransportV1({
      data: "e30=",
      sender: "node1",
      replyTo: "",
      seenBy: [],
      federation: { req: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e", replyTo: "", target: [] },
    });
    expect(encodeTransport(built)).toBe(
      '{"protocol":"choria:transport:1","data":"e30=","headers":{"mc_sender":"node1","federation":{"req":"9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e"}}}',
    );
  });
});
