import * as z from "zod/mini";
import { type Decoded, fail, ok } from "./errors.ts";
import { type FieldProblem, isRecord, parseJson, validateWith } from "./json.ts";

/** mcorpc reply status codes (a Go uint8); the numbers are on the wire, the names are for people. */
export const StatusCode = {
  OK: 0,
  Aborted: 1,
  UnknownAction: 2,
  MissingData: 3,
  InvalidData: 4,
  UnknownError: 5,
} as const;

export type StatusName = keyof typeof StatusCode;
export type StatusCode = (typeof StatusCode)[StatusName];

const STATUS_NAMES: readonly StatusName[] = [
  "OK",
  "Aborted",
  "UnknownAction",
  "MissingData",
  "InvalidData",
  "UnknownError",
];

export function statusName(code: StatusCode): StatusName {
  return STATUS_NAMES[code]!;
}

export function isStatusCode(value: unknown): value is StatusCode {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < STATUS_NAMES.length;
}

// Go emits the JSON string "{}" when an action sets its reply data to nil; that and a missing or null
// `data` all mean "no data".
const NO_DATA = new Set<unknown>([undefined, null, "{}"]);

const requestData = z.pipe(
  z.optional(z.unknown()),
  z.transform((value, ctx): Record<string, unknown> => {
    if (NO_DATA.has(value)) return {};
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
    ctx.issues.push({ code: "custom", message: "expected an object", input: value });
    return z.NEVER;
  }),
);

const replyData = z.pipe(
  z.optional(z.unknown()),
  z.transform((value) => (NO_DATA.has(value) ? {} : value)),
);

const rpcRequestSchema = z.looseObject({
  agent: z.string().check(z.minLength(1)),
  action: z.string().check(z.minLength(1)),
  data: requestData,
});

/** The RPC reply's shape; decodeRpcReply checks it by hand (rpcReplyProblem), to the same verdicts and words. */
export const rpcReplySchema = z.looseObject({
  action: z.string(),
  statuscode: z.literal([0, 1, 2, 3, 4, 5]),
  statusmsg: z.string(),
  // Usually an object, but a Go agent may reply with any JSON value.
  data: replyData,
});

export interface RpcRequest {
  agent: string;
  action: string;
  data: Record<string, unknown>;
}

export interface RpcReply {
  action: string;
  statuscode: StatusCode;
  statusmsg: string;
  data: unknown;
}

/** Parses the RPC body of a request payload. Never throws. */
export function decodeRpcRequest(text: string): Decoded<RpcRequest> {
  const parsed = parseJson("rpc_request", text);
  if (!parsed.ok) return parsed;
  return validateWith("rpc_request", rpcRequestSchema, parsed.value);
}

/** Parses the RPC body of a reply payload. Never throws. */
export function decodeRpcReply(text: string): Decoded<RpcReply> {
  const parsed = parseJson("rpc_reply", text);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  const problem = rpcReplyProblem(value);
  if (problem !== undefined) return fail("rpc_reply", "invalid_field", ...problem);
  const reply = value as RpcReply;
  // The parsed document is this call's own, so the data transform can be applied in place.
  if (NO_DATA.has(reply.data)) reply.data = {};
  return ok(reply);
}

/**
 * rpcReplySchema without zod: every node's reply to a request comes through here, and zod's parse cost
 * as much as the JSON parse. It names the first refused field in the schema's order, in zod's words.
 */
function rpcReplyProblem(value: unknown): FieldProblem | undefined {
  if (!isRecord(value)) return ["", expectedType("object", value)];
  if (typeof value.action !== "string") return ["action", expectedType("string", value.action)];
  if (!isStatusCode(value.statuscode)) return ["statuscode", "Invalid option: expected one of 0|1|2|3|4|5"];
  if (typeof value.statusmsg !== "string") return ["statusmsg", expectedType("string", value.statusmsg)];
  return undefined;
}

function expectedType(expected: string, input: unknown): string {
  const received = input === null ? "null" : Array.isArray(input) ? "array" : typeof input;
  return `Invalid input: expected ${expected}, received ${received}`;
}

export function encodeRpcRequest(request: RpcRequest): string {
  return JSON.stringify({ agent: request.agent, action: request.action, data: request.data });
}

/** Go's key order: action, statuscode, statusmsg, data. */
export function encodeRpcReply(reply: RpcReply): string {
  return JSON.stringify({
    action: reply.action,
    statuscode: reply.statuscode,
    statusmsg: reply.statusmsg,
    data: reply.data,
  });
}

export function newRpcRequest(agent: string, action: string, data: Record<string, unknown> = {}): RpcRequest {
  return { agent, action, data };
}

/** A reply with Go's defaults: status OK, message "OK", data `{}`. */
export function newRpcReply(
  action: string,
  data: unknown = {},
  statuscode: StatusCode = StatusCode.OK,
  statusmsg = "OK",
): RpcReply {
  return { action, statuscode, statusmsg, data };
}

// Discovery: Go clients send base64("ping") and Go nodes answer the bare text `pong`; Ruby sends and
// answers JSON strings ("ping" with quotes). Payloads here are already base64-decoded (requestPayloadText).
const PING = new Set(["ping", '"ping"']);
const PONG = new Set(["pong", '"pong"']);

export function isPingPayload(text: string): boolean {
  return PING.has(text.trim());
}

export function isPongPayload(text: string): boolean {
  return PONG.has(text.trim());
}

/** The payload a Go discovery agent answers a ping with. */
export const PONG_PAYLOAD = "pong";
