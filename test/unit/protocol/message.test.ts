import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../../../lib/protocol/errors.ts";
import { validateWith } from "../../../lib/protocol/json.ts";
import {
  checkRequestTime,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  isExpired,
  newReply,
  newRequest,
  type Request,
  replySchema,
  requestExpiry,
  requestPayloadText,
  requestSchema,
} from "../../../lib/protocol/message.ts";
import { compact, expectSchemaVerdicts, fixtureText } from "./support.ts";

function request(json: string): Request {
  const decoded = decodeRequest(json);
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

// biome-ignore lint/suspicious/noExplicitAny: tests mutate parsed JSON freely
type Doc = any;

const REQUEST_JSON = fixtureText("spec-3.1-request.json");
const REPLY_JSON = fixtureText("spec-3.2-reply.json");

describe("choria:request:1", () => {
  it("decodes the spec's §3.1 request and re-encodes it byte for byte", () => {
    const decoded = request(REQUEST_JSON);
    expect(decoded.envelope.filter.agent).toEqual(["rpcutil"]);
    expect(decoded.message).toBe('{"agent":"rpcutil","action":"ping","data":{}}');
    expect(encodeRequest(decoded)).toBe(compact(REQUEST_JSON));
  });

  it("emits envelope keys in go-choria's order whatever order it was given", () => {
    const doc = JSON.parse(REQUEST_JSON);
    const reversed = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).reverse());
    const shuffled = reversed({
      ...doc,
      envelope: reversed({ ...doc.envelope, filter: reversed(doc.envelope.filter) }),
    });
    expect(JSON.stringify(shuffled)).not.toBe(compact(REQUEST_JSON));
    expect(encodeRequest(request(JSON.stringify(shuffled)))).toBe(compact(REQUEST_JSON));
  });

  it("drops unknown keys on re-encode, as Go's structs do", () => {
    const doc = JSON.parse(REQUEST_JSON);
    doc.extra = 1;
    doc.envelope.extra = 2;
    expect(encodeRequest(request(JSON.stringify(doc)))).toBe(compact(REQUEST_JSON));
  });

  it("reads a null or missing filter, and null filter arrays, as empty", () => {
    const doc = JSON.parse(REQUEST_JSON);
    doc.envelope.filter = null;
    expect(request(JSON.stringify(doc)).envelope.filter).toEqual({
      fact: [],
      cf_class: [],
      agent: [],
      identity: [],
      compound: [],
    });
    doc.envelope.filter = { fact: null, identity: ["n1"] };
    expect(request(JSON.stringify(doc)).envelope.filter).toEqual({
      fact: [],
      cf_class: [],
      agent: [],
      identity: ["n1"],
      compound: [],
    });
  });

  it.each([
    ["not JSON", "{", "malformed_json", ""],
    ["an array", "[]", "invalid_field", ""],
    ["v2 by name", '{"protocol":"io.choria.protocol.v2.request"}', "unsupported_protocol", "protocol"],
    ["a later v1-style version", '{"protocol":"choria:request:2"}', "unsupported_protocol", "protocol"],
    ["another layer", '{"protocol":"choria:reply:1"}', "invalid_field", "protocol"],
  ])("refuses %s", (_name, json, code, field) => {
    const decoded = decodeRequest(json);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error).toBeInstanceOf(ProtocolError);
    expect(decoded.error).toMatchObject({ layer: "request", code, field });
  });

  it.each([
    ["message", (d: Doc) => delete d.message, "message"],
    ["empty message", (d: Doc) => (d.message = ""), "message"],
    ["numeric message", (d: Doc) => (d.message = 1), "message"],
    ["short request id", (d: Doc) => (d.envelope.requestid = "abc"), "envelope.requestid"],
    ["missing callerid", (d: Doc) => delete d.envelope.callerid, "envelope.callerid"],
    ["empty collective", (d: Doc) => (d.envelope.collective = ""), "envelope.collective"],
    ["string ttl", (d: Doc) => (d.envelope.ttl = "60"), "envelope.ttl"],
    ["fractional time", (d: Doc) => (d.envelope.time = 1.5), "envelope.time"],
    [
      "bad operator",
      (d: Doc) => (d.envelope.filter.fact = [{ fact: "a", operator: "~", value: "b" }]),
      "envelope.filter.fact.0.operator",
    ],
    [
      "numeric fact value",
      (d: Doc) => (d.envelope.filter.fact = [{ fact: "a", operator: "==", value: 1 }]),
      "envelope.filter.fact.0.value",
    ],
    ["string identity list", (d: Doc) => (d.envelope.filter.identity = "n1"), "envelope.filter.identity"],
    ["missing envelope", (d: Doc) => delete d.envelope, "envelope"],
  ])("names the field for a bad %s", (_name, mutate, field) => {
    const doc = JSON.parse(REQUEST_JSON);
    mutate(doc);
    const decoded = decodeRequest(JSON.stringify(doc));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.error).toMatchObject({ layer: "request", code: "invalid_field", field });
  });

  it("refuses input over maxBytes before parsing, and invalid UTF-8 bytes", () => {
    expect(decodeRequest(REQUEST_JSON, { maxBytes: 100 })).toMatchObject({
      ok: false,
      error: { code: "too_large" },
    });
    expect(decodeRequest(REQUEST_JSON, { maxBytes: REQUEST_JSON.length }).ok).toBe(true);
    const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]);
    expect(decodeRequest(bytes)).toMatchObject({
      ok: false,
      error: { layer: "request", code: "malformed_json" },
    });
  });
});

describe("choria:reply:1", () => {
  it("decodes the spec's §3.2 reply and re-encodes it byte for byte", () => {
    const decoded = decodeReply(REPLY_JSON);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value.envelope.senderid).toBe("node1.example.net");
    expect(encodeReply(decoded.value)).toBe(compact(REPLY_JSON));
  });

  it("checks a reply by hand to the schema's verdicts: the same replies kept, the same first field refused", () => {
    expectSchemaVerdicts(decodeReply, replySchema, JSON.parse(REPLY_JSON), [
      "protocol",
      "message",
      "envelope",
      "envelope.requestid",
      "envelope.senderid",
      "envelope.agent",
      "envelope.time",
      "envelope.extra",
    ]);
  });

  it("refuses v2 replies as unsupported and names missing fields", () => {
    expect(decodeReply('{"protocol":"io.choria.protocol.v2.reply"}')).toMatchObject({
      ok: false,
      error: { layer: "reply", code: "unsupported_protocol" },
    });
    const doc = JSON.parse(REPLY_JSON);
    delete doc.envelope.agent;
    expect(decodeReply(JSON.stringify(doc))).toMatchObject({
      ok: false,
      error: { layer: "reply", code: "invalid_field", field: "envelope.agent" },
    });
  });
});

describe("newRequest / newReply", () => {
  const base = {
    agent: "rpcutil",
    collective: "mcollective",
    callerid: "choria=rip.mcollective",
    senderid: "client1.example.net",
    payload: '{"agent":"rpcutil","action":"ping","data":{}}',
  };

  it("rebuilds the spec's §3.1 request from its parts", () => {
    const built = newRequest({
      ...base,
      time: 1718000000,
      requestId: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e",
      filter: { agent: ["rpcutil"] },
    });
    expect(encodeRequest(built)).toBe(compact(REQUEST_JSON));
  });

  it("defaults ttl 60, time now, a fresh request id and an empty filter", () => {
    const before = Math.floor(Date.now() / 1000);
    const built = newRequest(base);
    expect(built.envelope.ttl).toBe(60);
    expect(built.envelope.time).toBeGreaterThanOrEqual(before);
    expect(built.envelope.requestid).toMatch(/^[0-9a-f]{32}$/);
    expect(built.envelope.filter).toEqual({ fact: [], cf_class: [], agent: [], identity: [], compound: [] });
  });

  it("throws a ProtocolError for a ttl under 30, an empty payload or agent", () => {
    expect(() => newRequest({ ...base, ttl: 29 })).toThrow(ProtocolError);
    expect(() => newRequest({ ...base, payload: "" })).toThrow(/request\.message/);
    expect(() => newRequest({ ...base, agent: "" })).toThrow(/envelope\.agent/);
  });

  it("checks what it built by hand to requestSchema's verdicts: the same kept, the same first field refused", () => {
    // No null or undefined: newRequest reads those as "use the default", which the schema does not.
    const odd = fc.constantFrom<unknown>("", "x", "a".repeat(32), 0, 30, 1.5, -1, 2 ** 53, true, {}, ["a"]);
    const valid = {
      ...base,
      ttl: 60,
      time: 1718000000,
      requestId: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e",
      filter: { fact: [], cf_class: [], agent: ["rpcutil"], identity: [], compound: [[{ expr: "a" }]] },
    };
    // The valid request with a few fields swapped for odd values, so each check is reached alone.
    // The valid request with one or two fields swapped for odd values, so each check is reached alone.
    const maybe = (good: unknown) => fc.oneof(fc.constant(good), odd);
    const items = (good: unknown) => fc.array(maybe(good), { maxLength: 2 });
    const filter = fc.record(
      {
        fact: fc.array(fc.record({ fact: maybe("a"), operator: maybe("=="), value: maybe("b") }), {
          maxLength: 2,
        }),
        cf_class: items("c"),
        agent: items("a"),
        identity: items("i"),
        compound: fc.array(fc.array(maybe({ expr: "a" }), { maxLength: 2 }), { maxLength: 2 }),
      },
      { requiredKeys: [] },
    );
    const field = fc.oneof(
      ...(
        ["agent", "collective", "callerid", "senderid", "payload", "ttl", "time", "requestId"] as const
      ).map((key) => odd.map((value) => ({ [key]: value }))),
      filter.map((changes) => ({ filter: { ...valid.filter, ...changes } })),
    );
    const options = fc
      .array(field, { minLength: 0, maxLength: 2 })
      .map((changes) => Object.assign({}, valid, ...changes) as typeof valid);
    fc.assert(
      fc.property(options, (o) => {
        const built = (() => {
          try {
            return { ok: true as const, value: newRequest(o as unknown as Parameters<typeof newRequest>[0]) };
          } catch (error) {
            return { ok: false as const, error: error as ProtocolError };
          }
        })();
        if (!built.ok && built.error.field === "envelope.ttl" && !((o.ttl as number) >= 30)) return;
        const { filter } = o;
        const reference = validateWith("request", requestSchema, {
          protocol: "choria:request:1",
          message: o.payload,
          envelope: {
            requestid: o.requestId,
            senderid: o.senderid,
            callerid: o.callerid,
            collective: o.collective,
            agent: o.agent,
            ttl: o.ttl,
            time: o.time,
            filter: { ...filter, compound: filter.compound.map((group) => group.map((t) => t)) },
          },
        });
        expect(built.ok).toBe(reference.ok);
        if (built.ok && reference.ok) expect(built.value).toEqual(reference.value);
        if (!built.ok && !reference.ok) expect(built.error.field).toBe(reference.error.field);
      }),
      { numRuns: 2000 },
    );
  });

  it("answers with the request's id and agent", () => {
    const reply = newReply(request(REQUEST_JSON), "node1.example.net", fixtureReplyMessage(), 1718000001);
    expect(encodeReply(reply)).toBe(compact(REPLY_JSON));
    expect(() => newReply(request(REQUEST_JSON), "n", "")).toThrow(ProtocolError);
  });
});

function fixtureReplyMessage(): string {
  return JSON.parse(REPLY_JSON).message;
}

describe("TTL window", () => {
  const req = request(REQUEST_JSON); // time 1718000000, ttl 60

  it("is open strictly inside |now − time| < ttl in both directions", () => {
    expect(requestExpiry(req)).toBe(1718000060);
    expect(isExpired(req, 1718000000)).toBe(false);
    expect(isExpired(req, 1718000059)).toBe(false);
    expect(isExpired(req, 1718000060)).toBe(true);
    expect(isExpired(req, 1717999941)).toBe(false);
    expect(isExpired(req, 1717999940)).toBe(true);
  });

  it("reports an expired request as a typed error", () => {
    expect(checkRequestTime(req, 1718000030)).toEqual({ ok: true, value: req });
    expect(checkRequestTime(req, 1718000100)).toMatchObject({
      ok: false,
      error: { layer: "request", code: "expired", field: "envelope.time" },
    });
    const future = checkRequestTime(req, 1717990000);
    expect(future.ok).toBe(false);
    if (!future.ok) expect(future.error.message).toMatch(/in the future/);
  });
});

describe("requestPayloadText", () => {
  const withMessage = (message: string) => ({ ...request(REQUEST_JSON), message });

  it("decodes base64 first, as the Go server does (legacy discovery)", () => {
    expect(requestPayloadText(withMessage("cGluZw=="))).toBe("ping");
  });

  it("falls back to the raw text for RPC JSON, unpadded or non-UTF-8 base64", () => {
    expect(requestPayloadText(withMessage('{"agent":"rpcutil"}'))).toBe('{"agent":"rpcutil"}');
    expect(requestPayloadText(withMessage("cGluZw"))).toBe("cGluZw");
    // "ping" is itself valid base64, but of bytes that are not UTF-8, so it stays "ping".
    expect(requestPayloadText(withMessage("ping"))).toBe("ping");
  });
});
