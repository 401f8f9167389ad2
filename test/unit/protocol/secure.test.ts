import { describe, expect, it } from "vitest";
import { encodeBase64, encodeBase64Text, utf8 } from "../../../lib/protocol/base64.ts";
import { decodeReply, decodeRequest, encodeReply } from "../../../lib/protocol/message.ts";
import { decodeRpcReply } from "../../../lib/protocol/rpc.ts";
import {
  decodeSecureReply,
  decodeSecureRequest,
  encodeSecureReply,
  encodeSecureRequest,
  type SecureReply,
  type SecureRequest,
  secureReplyOf,
  secureReplySchema,
  secureRequestOf,
  transportData,
} from "../../../lib/protocol/secure.ts";
import { decodeTransport, newTransportV1, type TransportPacket } from "../../../lib/protocol/transport.ts";
import { compact, expectSchemaVerdicts, fixtureText } from "./support.ts";

const SECURE_REQUEST = fixtureText("spec-2.1-secure-request.json");
const SECURE_REPLY = fixtureText("spec-2.2-secure-reply.json");

function ok<T>(decoded: { ok: true; value: T } | { ok: false; error: Error }): T {
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

const withData = (data: string): TransportPacket => newTransportV1({ data, sender: "node1" });

describe("choria:secure:request:1 (spec §2.1)", () => {
  it("decodes, keeps the inner message byte for byte, and re-encodes exactly", () => {
    const secure: SecureRequest = ok(decodeSecureRequest(SECURE_REQUEST));
    expect(secure.message).toBe(JSON.parse(SECURE_REQUEST).message);
    expect(secure.pubcert.endsWith("-----END CERTIFICATE-----\n")).toBe(true);
    expect(encodeSecureRequest(secure.message, secure.signature, secure.pubcert)).toBe(
      compact(SECURE_REQUEST),
    );
  });

  it("reports the spec's elided envelope ({...}) as malformed JSON in the request layer", () => {
    const secure = ok(decodeSecureRequest(SECURE_REQUEST));
    expect(decodeRequest(secure.message)).toMatchObject({
      ok: false,
      error: { layer: "request", code: "malformed_json" },
    });
  });

  it.each([
    ["signature", "signature"],
    ["pubcert", "pubcert"],
    ["message", "message"],
  ])("names a missing %s", (key, field) => {
    const doc = JSON.parse(SECURE_REQUEST);
    delete doc[key];
    expect(decodeSecureRequest(JSON.stringify(doc))).toMatchObject({
      ok: false,
      error: { layer: "secure_request", code: "invalid_field", field },
    });
  });

  it("refuses a base64-wrapped or object message by type, v2 as unsupported and a secure reply as invalid", () => {
    const doc = JSON.parse(SECURE_REQUEST);
    expect(
      decodeSecureRequest(JSON.stringify({ ...doc, message: { protocol: "choria:request:1" } })),
    ).toMatchObject({
      ok: false,
      error: { field: "message" },
    });
    expect(
      decodeSecureRequest(JSON.stringify({ ...doc, protocol: "io.choria.protocol.v2.secure_request" })),
    ).toMatchObject({ ok: false, error: { code: "unsupported_protocol", field: "protocol" } });
    expect(
      decodeSecureRequest(JSON.stringify({ ...doc, protocol: "choria:secure:request:2" })),
    ).toMatchObject({
      ok: false,
      error: { code: "unsupported_protocol" },
    });
    expect(decodeSecureRequest(SECURE_REPLY)).toMatchObject({
      ok: false,
      error: { layer: "secure_request", code: "invalid_field", field: "protocol" },
    });
    expect(decodeSecureRequest("not json")).toMatchObject({ ok: false, error: { code: "malformed_json" } });
  });
});

describe("choria:secure:reply:1 (spec §2.2)", () => {
  it("decodes through every layer and re-encodes each exactly", () => {
    const secure: SecureReply = ok(decodeSecureReply(SECURE_REPLY));
    expect(encodeSecureReply(secure.message, secure.hash)).toBe(compact(SECURE_REPLY));
    const reply = ok(decodeReply(secure.message));
    expect(encodeReply(reply)).toBe(secure.message);
    expect(reply.envelope).toEqual({
      requestid: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e",
      senderid: "node1.example.net",
      agent: "rpcutil",
      time: 1718000000,
    });
    const rpc = ok(decodeRpcReply(reply.message));
    expect(rpc).toEqual({ action: "ping", statuscode: 0, statusmsg: "OK", data: { pong: 1718000000 } });
  });

  it("checks a secure reply by hand to the schema's verdicts", () => {
    expectSchemaVerdicts(decodeSecureReply, secureReplySchema, JSON.parse(SECURE_REPLY), [
      "protocol",
      "message",
      "hash",
    ]);
  });

  it("names a missing hash and refuses v2", () => {
    const doc = JSON.parse(SECURE_REPLY);
    delete doc.hash;
    expect(decodeSecureReply(JSON.stringify(doc))).toMatchObject({
      ok: false,
      error: { layer: "secure_reply", code: "invalid_field", field: "hash" },
    });
    expect(decodeSecureReply('{"protocol":"io.choria.protocol.v2.secure_reply"}')).toMatchObject({
      ok: false,
      error: { code: "unsupported_protocol" },
    });
  });
});

describe("opening a transport's data", () => {
  it("reads standard padded base64, also when wrapped at 60 columns like Ruby's signer", () => {
    const data = transportData(SECURE_REPLY);
    expect(ok(secureReplyOf(withData(data))).hash).toBe(JSON.parse(SECURE_REPLY).hash);
    const wrapped = data.replace(/(.{60})/g, "$1\n");
    expect(wrapped).toContain("\n");
    expect(ok(secureReplyOf(withData(wrapped))).message).toBe(JSON.parse(SECURE_REPLY).message);
    expect(ok(secureRequestOf(withData(transportData(SECURE_REQUEST)))).signature).toBe("Kx3v...base64...==");
  });

  it.each([
    ["the spec's truncated example", JSON.parse(fixtureText("spec-1.2-request-transport.json")).data],
    ["unpadded base64", encodeBase64Text(SECURE_REQUEST).replace(/=+$/, "")],
    [
      "the URL-safe alphabet",
      encodeBase64Text(`${SECURE_REQUEST}??>`).replaceAll("/", "_").replaceAll("+", "-"),
    ],
    ["embedded spaces", encodeBase64Text(SECURE_REQUEST).replace(/(.{8})/, "$1 ")],
    ["base64 of invalid UTF-8", encodeBase64(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d))],
  ])("refuses %s as invalid_base64 on transport.data", (_name, data) => {
    expect(secureRequestOf(withData(data))).toMatchObject({
      ok: false,
      error: { layer: "transport", code: "invalid_base64", field: "data" },
    });
    expect(secureReplyOf(withData(data))).toMatchObject({ ok: false, error: { code: "invalid_base64" } });
  });

  it("opens the data of a decoded wire packet", () => {
    const wire = JSON.stringify({
      protocol: "choria:transport:1",
      data: transportData(SECURE_REQUEST),
      headers: {},
    });
    const packet = ok(decodeTransport(utf8(wire)));
    expect(ok(secureRequestOf(packet)).message).toBe(JSON.parse(SECURE_REQUEST).message);
  });
});
