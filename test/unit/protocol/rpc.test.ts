import { describe, expect, it } from "vitest";
import {
  decodeRpcReply,
  decodeRpcRequest,
  encodeRpcReply,
  encodeRpcRequest,
  isPingPayload,
  isPongPayload,
  isStatusCode,
  newRpcReply,
  newRpcRequest,
  rpcReplySchema,
  StatusCode,
  statusName,
} from "../../../lib/protocol/rpc.ts";
import { expectSchemaVerdicts } from "./support.ts";

describe("RPC request payload", () => {
  it("decodes the spec's §4 request and re-encodes it byte for byte", () => {
    const text = '{"agent":"rpcutil","action":"ping","data":{}}';
    const decoded = decodeRpcRequest(text);
    expect(decoded).toEqual({ ok: true, value: { agent: "rpcutil", action: "ping", data: {} } });
    if (decoded.ok) expect(encodeRpcRequest(decoded.value)).toBe(text);
    expect(encodeRpcRequest(newRpcRequest("rpcutil", "ping"))).toBe(text);
  });

  it('reads missing, null and Go\'s string "{}" data as an empty object', () => {
    for (const data of ["", ',"data":null', ',"data":"{}"']) {
      expect(decodeRpcRequest(`{"agent":"a","action":"b"${data}}`)).toMatchObject({
        ok: true,
        value: { data: {} },
      });
    }
  });

  it.each([
    ["not JSON", "{", "malformed_json", ""],
    ["missing agent", '{"action":"b","data":{}}', "invalid_field", "agent"],
    ["empty action", '{"agent":"a","action":"","data":{}}', "invalid_field", "action"],
    ["array data", '{"agent":"a","action":"b","data":[1]}', "invalid_field", "data"],
    ["string data", '{"agent":"a","action":"b","data":"x"}', "invalid_field", "data"],
  ])("refuses %s", (_name, text, code, field) => {
    expect(decodeRpcRequest(text)).toMatchObject({ ok: false, error: { layer: "rpc_request", code, field } });
  });
});

describe("RPC reply payload", () => {
  const text = '{"action":"ping","statuscode":0,"statusmsg":"OK","data":{"pong":1718000000}}';

  it("decodes the spec's §4 reply and re-encodes it byte for byte", () => {
    const decoded = decodeRpcReply(text);
    expect(decoded).toMatchObject({
      ok: true,
      value: { statuscode: StatusCode.OK, data: { pong: 1718000000 } },
    });
    if (decoded.ok) expect(encodeRpcReply(decoded.value)).toBe(text);
    expect(encodeRpcReply(newRpcReply("ping", { pong: 1718000000 }))).toBe(text);
  });

  it('accepts Go\'s nil-data quirk, the string "{}", as an empty object', () => {
    const quirk = '{"action":"x","statuscode":1,"statusmsg":"You are not authorized","data":"{}"}';
    expect(decodeRpcReply(quirk)).toMatchObject({ ok: true, value: { statuscode: 1, data: {} } });
  });

  it("keeps non-object data a Go agent may send", () => {
    expect(decodeRpcReply('{"action":"x","statuscode":0,"statusmsg":"OK","data":[1,2]}')).toMatchObject({
      ok: true,
      value: { data: [1, 2] },
    });
  });

  it.each([
    ["unknown status code", '{"action":"x","statuscode":6,"statusmsg":"","data":{}}', "statuscode"],
    ["string status code", '{"action":"x","statuscode":"0","statusmsg":"","data":{}}', "statuscode"],
    ["missing statusmsg", '{"action":"x","statuscode":0,"data":{}}', "statusmsg"],
    ["numeric action", '{"action":1,"statuscode":0,"statusmsg":"","data":{}}', "action"],
  ])("refuses a %s", (_name, reply, field) => {
    expect(decodeRpcReply(reply)).toMatchObject({
      ok: false,
      error: { layer: "rpc_reply", code: "invalid_field", field },
    });
  });
});

describe("status codes", () => {
  it("name the six mcorpc codes", () => {
    expect([0, 1, 2, 3, 4, 5].map((c) => statusName(c as StatusCode))).toEqual([
      "OK",
      "Aborted",
      "UnknownAction",
      "MissingData",
      "InvalidData",
      "UnknownError",
    ]);
    expect(StatusCode.InvalidData).toBe(4);
    expect(isStatusCode(5)).toBe(true);
    expect(isStatusCode(6)).toBe(false);
    expect(isStatusCode(1.5)).toBe(false);
  });
});

describe("discovery ping / pong", () => {
  it("accept bare Go and JSON-quoted Ruby forms", () => {
    expect(isPingPayload("ping")).toBe(true);
    expect(isPingPayload('"ping"')).toBe(true);
    expect(isPingPayload("ping\n")).toBe(true);
    expect(isPongPayload("pong")).toBe(true);
    expect(isPongPayload('"pong"')).toBe(true);
  });

  it("refuse anything else", () => {
    for (const text of ["", "pong", "PING", "cGluZw==", '{"ping":1}', "pingping"])
      expect(isPingPayload(text)).toBe(false);
    for (const text of ["", "ping", "'pong'"]) expect(isPongPayload(text)).toBe(false);
  });
});

describe("RPC reply checked by hand", () => {
  const fields = ["action", "statuscode", "statusmsg", "data", "data.x"];

  it("keeps and refuses what rpcReplySchema does, naming the same first field in the same words", () => {
    const valid = { action: "ping", statuscode: 0, statusmsg: "OK", data: { pong: 1718000000 } };
    expectSchemaVerdicts(decodeRpcReply, rpcReplySchema, valid, fields, true);
  });

  it("reads Go's nil data (the string {}) as the schema does, with its string among the odd values", () => {
    const valid = { action: "ping", statuscode: 1, statusmsg: "{}", data: "{}" };
    expectSchemaVerdicts(decodeRpcReply, rpcReplySchema, valid, fields, true);
  });
});
