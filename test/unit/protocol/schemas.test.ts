import { describe, expect, it } from "vitest";
import { encodeReply, encodeRequest, newReply, newRequest } from "../../../lib/protocol/message.ts";
import { encodeRpcReply, encodeRpcRequest, newRpcReply, newRpcRequest } from "../../../lib/protocol/rpc.ts";
import { encodeSecureReply, encodeSecureRequest, transportData } from "../../../lib/protocol/secure.ts";
import { replySubject } from "../../../lib/protocol/subjects.ts";
import { encodeTransport, newTransportV1 } from "../../../lib/protocol/transport.ts";
import { fixtureText, v1Schemas } from "./support.ts";

const schemas = v1Schemas();

const request = newRequest({
  agent: "rpcutil",
  collective: "mcollective",
  callerid: "choria=rip.mcollective",
  senderid: "client1.example.net",
  payload: encodeRpcRequest(newRpcRequest("rpcutil", "ping")),
  filter: {
    fact: [{ fact: "os.family", operator: "==", value: "Debian" }],
    cf_class: ["nginx"],
    agent: ["rpcutil"],
    identity: ["/^web/"],
    compound: [[{ expr: "with('nginx')" }]],
  },
});
const reply = newReply(request, "node1.example.net", encodeRpcReply(newRpcReply("ping", { pong: 1 })));
const requestJson = encodeRequest(request);
const replyJson = encodeReply(reply);
const secureRequestJson = encodeSecureRequest(requestJson, "c2lnbmF0dXJl", "-----BEGIN CERTIFICATE-----\n");
const secureReplyJson = encodeSecureReply(replyJson, "aGFzaA==");

describe("packets we emit validate against Choria's v1 schemas", () => {
  it("request and reply", () => {
    expect(schemas.request(JSON.parse(requestJson))).toEqual([]);
    expect(schemas.reply(JSON.parse(replyJson))).toEqual([]);
  });

  it("secure request and secure reply", () => {
    expect(schemas.secure_request(JSON.parse(secureRequestJson))).toEqual([]);
    expect(schemas.secure_reply(JSON.parse(secureReplyJson))).toEqual([]);
  });

  it("plain and federated transports, with the wire's `target` key rather than the schema's `targets`", () => {
    const replyTo = replySubject("mcollective", "choria=rip.mcollective", request.envelope.requestid);
    const hop: [string, string, string] = ["nats://127.0.0.1:4222", "client1", "nats://127.0.0.1:4222"];
    const plain = newTransportV1({
      data: transportData(secureRequestJson),
      sender: "client1",
      replyTo,
      seenBy: [hop],
    });
    const federated = newTransportV1({
      data: transportData(secureRequestJson),
      sender: "client1",
      replyTo,
      seenBy: [hop],
      federation: { req: request.envelope.requestid, target: ["mcollective.node.node1.example.net"] },
    });
    const replyTransport = newTransportV1({
      data: transportData(secureReplyJson),
      sender: "node1.example.net",
    });
    for (const packet of [plain, federated, replyTransport]) {
      expect(schemas.transport(JSON.parse(encodeTransport(packet)))).toEqual([]);
    }
    const wire = JSON.parse(encodeTransport(federated));
    expect(wire.headers.federation.target).toEqual(["mcollective.node.node1.example.net"]);
    expect(wire.headers.federation).not.toHaveProperty("targets");
  });

  it("the spec's examples validate too (the schemas do accept what Go sends)", () => {
    for (const [name, schema] of [
      ["spec-1.2-request-transport.json", "transport"],
      ["spec-1.3-reply-transport.json", "transport"],
      ["spec-6.1-federated-request-transport.json", "transport"],
      ["spec-2.1-secure-request.json", "secure_request"],
      ["spec-2.2-secure-reply.json", "secure_reply"],
      ["spec-3.1-request.json", "request"],
      ["spec-3.2-reply.json", "reply"],
    ] as const) {
      expect(schemas[schema](JSON.parse(fixtureText(name))), name).toEqual([]);
    }
  });

  it("the validators can fail: a request with a short ttl and no filter is refused", () => {
    const bad = JSON.parse(requestJson);
    bad.envelope.ttl = 10;
    delete bad.envelope.filter;
    expect(schemas.request(bad).length).toBe(2);
  });
});
