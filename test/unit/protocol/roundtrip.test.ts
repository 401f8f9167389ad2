import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeBase64Text } from "../../../lib/protocol/base64.ts";
import type { Decoded } from "../../../lib/protocol/errors.ts";
import type { Filter } from "../../../lib/protocol/filter.ts";
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  newReply,
  newRequest,
  requestPayloadText,
} from "../../../lib/protocol/message.ts";
import {
  decodeRpcReply,
  decodeRpcRequest,
  encodeRpcReply,
  encodeRpcRequest,
  isPingPayload,
  type StatusCode,
} from "../../../lib/protocol/rpc.ts";
import {
  encodeSecureReply,
  encodeSecureRequest,
  secureReplyOf,
  secureRequestOf,
  transportData,
} from "../../../lib/protocol/secure.ts";
import { isReplySubject, nodeSubject, replySubject } from "../../../lib/protocol/subjects.ts";
import {
  decodeTransport,
  encodeTransport,
  newTransportV1,
  type SeenByHop,
} from "../../../lib/protocol/transport.ts";
import { v1Schemas } from "./support.ts";

const schemas = v1Schemas();

function value<T>(decoded: Decoded<T>): T {
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

// Characters that stress every layer: JSON escapes, the HTML-sensitive <>& Go escapes, line separators,
// multi-byte and astral UTF-8, and a NUL.
const tricky = fc.string({
  unit: fc.constantFrom(
    "a",
    "Z",
    "0",
    " ",
    "<",
    ">",
    "&",
    '"',
    "\\",
    "/",
    "\n",
    "\t",
    "\u0000",
    "é",
    "€",
    "中",
    "😀",
    "\u2028",
  ),
  maxLength: 24,
});
const text = fc.oneof(tricky, fc.string({ maxLength: 24 }));
const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/);
const identity = fc
  .array(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,12}$/), { minLength: 1, maxLength: 4 })
  .map((labels) => labels.join("."));
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    text,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(text, tie("value"), { maxKeys: 3 }),
  ),
})).value;
const filter: fc.Arbitrary<Partial<Filter>> = fc.record(
  {
    fact: fc.array(
      fc.record({
        fact: name,
        operator: fc.constantFrom(">=", "<=", "<", ">", "!=", "==", "=~" as const),
        value: text.filter((v) => v.length > 0),
      }),
      { maxLength: 2 },
    ),
    cf_class: fc.array(text, { maxLength: 2 }),
    agent: fc.array(name, { maxLength: 2 }),
    identity: fc.array(identity, { maxLength: 2 }),
    compound: fc.array(
      text.map((expr) => [{ expr }]),
      { maxLength: 1 },
    ),
  },
  { requiredKeys: [] },
);
const hop: fc.Arbitrary<SeenByHop> = fc.tuple(text, text, text);

describe("round trips through every layer", () => {
  it("request: RPC → request → secure request → transport → wire → back, unchanged", () => {
    fc.assert(
      fc.property(
        fc.record({
          agent: name,
          action: name,
          data: fc.dictionary(text, json, { maxKeys: 4 }),
          collective: name,
          callerid: text.filter((c) => c.length > 0),
          senderid: text,
          ttl: fc.integer({ min: 30, max: 86_400 }),
          time: fc.integer({ min: 0, max: 4_000_000_000 }),
          filter,
          signature: fc.base64String({ minLength: 4 }).filter((s) => s.length > 0),
          pubcert: text.filter((c) => c.length > 0),
          seenBy: fc.array(hop, { maxLength: 3 }),
          targets: fc.option(fc.array(identity, { minLength: 1, maxLength: 3 }), { nil: undefined }),
        }),
        (input) => {
          const rpcJson = encodeRpcRequest({ agent: input.agent, action: input.action, data: input.data });
          const request = newRequest({ ...input, payload: rpcJson });
          const requestJson = encodeRequest(request);
          const secureJson = encodeSecureRequest(requestJson, input.signature, input.pubcert);
          const replyTo = replySubject(input.collective, input.callerid, request.envelope.requestid);
          const wire = encodeTransport(
            newTransportV1({
              data: transportData(secureJson),
              sender: "client1",
              replyTo,
              seenBy: input.seenBy,
              federation: input.targets && {
                req: request.envelope.requestid,
                target: input.targets.map((t) => nodeSubject(input.collective, t)),
              },
            }),
          );

          const packet = value(decodeTransport(wire));
          expect(packet.headers["reply-to"]).toBe(replyTo);
          expect(isReplySubject(packet.headers["reply-to"]!)).toBe(true);
          expect(packet.headers["seen-by"] ?? []).toEqual(input.seenBy);
          expect(packet.headers.federation?.target?.length).toBe(input.targets?.length);
          const secure = value(secureRequestOf(packet));
          expect(secure.message).toBe(requestJson);
          expect(secure.signature).toBe(input.signature);
          expect(secure.pubcert).toBe(input.pubcert);
          const decoded = value(decodeRequest(secure.message));
          expect(decoded).toEqual(request);
          expect(encodeRequest(decoded)).toBe(requestJson);
          expect(value(decodeRpcRequest(requestPayloadText(decoded)))).toEqual({
            agent: input.agent,
            action: input.action,
            data: input.data,
          });

          expect(schemas.transport(JSON.parse(wire))).toEqual([]);
          expect(schemas.secure_request(JSON.parse(secureJson))).toEqual([]);
          expect(schemas.request(JSON.parse(requestJson))).toEqual([]);
        },
      ),
    );
  });

  it("reply: RPC reply → reply → secure reply → transport → wire → back, unchanged", () => {
    fc.assert(
      fc.property(
        fc.record({
          action: name,
          statuscode: fc.constantFrom<StatusCode>(0, 1, 2, 3, 4, 5),
          statusmsg: text,
          data: json.filter((d) => d !== null && d !== "{}"),
          senderid: text,
          time: fc.integer({ min: 0, max: 4_000_000_000 }),
          hash: fc.base64String({ minLength: 4 }),
        }),
        (input) => {
          const request = newRequest({
            agent: "rpcutil",
            collective: "mcollective",
            callerid: "choria=rip.mcollective",
            senderid: "client1",
            payload: "{}",
          });
          const rpcJson = encodeRpcReply(input);
          const reply = newReply(request, input.senderid, rpcJson, input.time);
          const replyJson = encodeReply(reply);
          const secureJson = encodeSecureReply(replyJson, input.hash);
          const wire = encodeTransport(newTransportV1({ data: transportData(secureJson), sender: "node1" }));

          const secure = value(secureReplyOf(value(decodeTransport(wire))));
          expect(secure.message).toBe(replyJson);
          const decoded = value(decodeReply(secure.message));
          expect(decoded).toEqual(reply);
          const { action, statuscode, statusmsg, data } = input;
          expect(value(decodeRpcReply(decoded.message))).toEqual({ action, statuscode, statusmsg, data });

          expect(schemas.transport(JSON.parse(wire))).toEqual([]);
          expect(schemas.secure_reply(JSON.parse(secureJson))).toEqual([]);
          expect(schemas.reply(JSON.parse(replyJson))).toEqual([]);
        },
      ),
    );
  });

  it("legacy discovery: a base64 'ping' payload reads back as ping", () => {
    const request = newRequest({
      agent: "discovery",
      collective: "mcollective",
      callerid: "choria=rip.mcollective",
      senderid: "client1",
      payload: encodeBase64Text("ping"),
    });
    expect(request.message).toBe("cGluZw==");
    expect(isPingPayload(requestPayloadText(value(decodeRequest(encodeRequest(request)))))).toBe(true);
  });
});
