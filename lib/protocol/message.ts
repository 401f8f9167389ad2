import * as z from "zod/mini";
import { decodeBase64Text } from "./base64.ts";
import { type Decoded, fail, ok, ProtocolError } from "./errors.ts";
import { emptyFilter, FACT_OPERATORS, type Filter, filterSchema, normaliseFilter } from "./filter.ts";
import { newRequestId } from "./ids.ts";
import { decodeVersioned, type FieldProblem, isRecord, validateWith } from "./json.ts";

const REQUEST_V1 = "choria:request:1";
const REPLY_V1 = "choria:reply:1";

/** The smallest TTL Choria's schema allows, and the default go-choria clients use. */
const MIN_TTL_SECONDS = 30;
const DEFAULT_TTL_SECONDS = 60;

const OTHER_REQUEST_VERSION = /^(?:choria:request:\d+|io\.choria\.protocol\.v\d+\.request)$/;
const OTHER_REPLY_VERSION = /^(?:choria:reply:\d+|io\.choria\.protocol\.v\d+\.reply)$/;

const REQUEST_ID_LENGTH = 32;
const requestId = z.string().check(z.length(REQUEST_ID_LENGTH));
const unixSeconds = z.number().check(z.int());

const envelopeSchema = z.looseObject({
  requestid: requestId,
  senderid: z.string(),
  callerid: z.string().check(z.minLength(1)),
  collective: z.string().check(z.minLength(1)),
  agent: z.string().check(z.minLength(1)),
  ttl: z.number().check(z.int(), z.nonnegative()),
  time: unixSeconds,
  // A nil *Filter in Go marshals as null; it selects every node like an empty one.
  filter: z.pipe(
    z.nullish(filterSchema),
    z.transform((filter): Filter => filter ?? emptyFilter()),
  ),
});

const replyEnvelopeSchema = z.looseObject({
  requestid: requestId,
  senderid: z.string(),
  agent: z.string().check(z.minLength(1)),
  time: unixSeconds,
});

// `message` is the application payload as text: RPC JSON as-is, or base64 for legacy discovery (§3.1).
/** The request's shape; newRequest checks what it built by hand (builtRequestProblem), to the same verdicts. */
export const requestSchema = z.looseObject({
  protocol: z.literal(REQUEST_V1),
  message: z.string().check(z.minLength(1)),
  envelope: envelopeSchema,
});

/** The reply's shape; decodeReply checks it by hand (replyProblem), to the same verdicts. */
export const replySchema = z.looseObject({
  protocol: z.literal(REPLY_V1),
  message: z.string().check(z.minLength(1)),
  envelope: replyEnvelopeSchema,
});

export type Request = z.infer<typeof requestSchema>;
export type Reply = z.infer<typeof replySchema>;

export interface DecodeMessageOptions {
  /** Refuse documents larger than this before parsing them. */
  maxBytes?: number;
}

/** Parses the `message` of a secure request. Never throws. */
export function decodeRequest(
  input: string | Uint8Array,
  options: DecodeMessageOptions = {},
): Decoded<Request> {
  return decodeVersioned(input, {
    layer: "request",
    schema: requestSchema,
    protocol: REQUEST_V1,
    otherVersions: OTHER_REQUEST_VERSION,
    maxBytes: options.maxBytes,
  });
}

/** Parses the `message` of a secure reply. Never throws. */
export function decodeReply(input: string | Uint8Array, options: DecodeMessageOptions = {}): Decoded<Reply> {
  return decodeVersioned(input, {
    layer: "reply",
    schema: replySchema,
    protocol: REPLY_V1,
    otherVersions: OTHER_REPLY_VERSION,
    maxBytes: options.maxBytes,
    check: replyProblem,
  });
}

/**
 * replySchema without zod: every reply a collection opens comes through here (10,000 for one request to
 * a large fleet), and zod's parse cost more than the JSON parse itself. The first problem found is named
 * by its field, in the schema's order, as validateWith names zod's first issue.
 */
function replyProblem(value: unknown): FieldProblem | undefined {
  if (!isRecord(value)) return ["", "expected an object"];
  if (value.protocol !== REPLY_V1) return ["protocol", `expected "${REPLY_V1}"`];
  if (typeof value.message !== "string" || value.message.length === 0)
    return ["message", "expected a non-empty string"];
  const envelope = value.envelope;
  if (!isRecord(envelope)) return ["envelope", "expected an object"];
  if (typeof envelope.requestid !== "string" || envelope.requestid.length !== REQUEST_ID_LENGTH)
    return ["envelope.requestid", `expected a string of ${REQUEST_ID_LENGTH} characters`];
  if (typeof envelope.senderid !== "string") return ["envelope.senderid", "expected a string"];
  if (typeof envelope.agent !== "string" || envelope.agent.length === 0)
    return ["envelope.agent", "expected a non-empty string"];
  if (!Number.isSafeInteger(envelope.time)) return ["envelope.time", "expected an integer"];
  return undefined;
}

/** Serialises a request with go-choria's key order; extra keys a decoded request carried are dropped. */
export function encodeRequest(request: Request): string {
  const e = request.envelope;
  return JSON.stringify({
    protocol: REQUEST_V1,
    message: request.message,
    envelope: {
      requestid: e.requestid,
      senderid: e.senderid,
      callerid: e.callerid,
      collective: e.collective,
      agent: e.agent,
      ttl: e.ttl,
      time: e.time,
      filter: normaliseFilter(e.filter),
    },
  });
}

/** Serialises a reply with go-choria's key order. */
export function encodeReply(reply: Reply): string {
  const e = reply.envelope;
  return JSON.stringify({
    protocol: REPLY_V1,
    message: reply.message,
    envelope: { requestid: e.requestid, senderid: e.senderid, agent: e.agent, time: e.time },
  });
}

export interface NewRequestOptions {
  agent: string;
  collective: string;
  callerid: string;
  senderid: string;
  /** The application payload as text; RPC requests carry their JSON here as-is, like Go clients. */
  payload: string;
  /** Seconds; at least MIN_TTL_SECONDS. */
  ttl?: number;
  /** Unix seconds; now by default. */
  time?: number;
  filter?: Partial<Filter>;
  requestId?: string;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Builds a request; throws a ProtocolError when an argument could not go on the wire (programmer error). */
export function newRequest(options: NewRequestOptions): Request {
  const request: Request = {
    protocol: REQUEST_V1,
    message: options.payload,
    envelope: {
      requestid: options.requestId ?? newRequestId(),
      senderid: options.senderid,
      callerid: options.callerid,
      collective: options.collective,
      agent: options.agent,
      ttl: options.ttl ?? DEFAULT_TTL_SECONDS,
      time: options.time ?? nowSeconds(),
      filter: normaliseFilter(options.filter),
    },
  };
  if (!(request.envelope.ttl >= MIN_TTL_SECONDS))
    throw new ProtocolError(
      "request",
      "invalid_field",
      "envelope.ttl",
      `must be at least ${MIN_TTL_SECONDS}`,
    );
  const problem = builtRequestProblem(request);
  if (problem) throw new ProtocolError("request", "invalid_field", problem[0], problem[1]);
  return request;
}

/**
 * requestSchema without zod, for a request newRequest has just built (a fixed protocol, a normalised
 * filter): every gateway call builds one, and zod's parse of it cost as much as signing's JSON work. It
 * refuses what the schema refuses, naming the same first field; only the argument types can be wrong.
 */
function builtRequestProblem(request: Request): FieldProblem | undefined {
  if (!isNonEmptyString(request.message)) return ["message", NON_EMPTY];
  const e = request.envelope;
  if (typeof e.requestid !== "string" || e.requestid.length !== REQUEST_ID_LENGTH)
    return ["envelope.requestid", `expected a string of ${REQUEST_ID_LENGTH} characters`];
  if (typeof e.senderid !== "string") return ["envelope.senderid", "expected a string"];
  if (!isNonEmptyString(e.callerid)) return ["envelope.callerid", NON_EMPTY];
  if (!isNonEmptyString(e.collective)) return ["envelope.collective", NON_EMPTY];
  if (!isNonEmptyString(e.agent)) return ["envelope.agent", NON_EMPTY];
  if (!Number.isSafeInteger(e.ttl)) return ["envelope.ttl", "expected an integer"];
  if (!Number.isSafeInteger(e.time)) return ["envelope.time", "expected an integer"];
  const filter = builtFilterProblem(e.filter);
  return filter && [`envelope.filter.${filter[0]}`, filter[1]];
}

const NON_EMPTY = "expected a non-empty string";

function isNonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}

function builtFilterProblem(filter: Filter): FieldProblem | undefined {
  for (const [i, f] of filter.fact.entries()) {
    if (!isNonEmptyString(f.fact)) return [`fact.${i}.fact`, NON_EMPTY];
    if (!(FACT_OPERATORS as readonly unknown[]).includes(f.operator))
      return [`fact.${i}.operator`, `expected one of ${FACT_OPERATORS.join(" ")}`];
    if (!isNonEmptyString(f.value)) return [`fact.${i}.value`, NON_EMPTY];
  }
  for (const list of ["cf_class", "agent", "identity"] as const) {
    const i = filter[list].findIndex((item) => typeof item !== "string");
    if (i !== -1) return [`${list}.${i}`, "expected a string"];
  }
  for (const [i, group] of filter.compound.entries()) {
    const j = group.findIndex((term) => !isRecord(term));
    if (j !== -1) return [`compound.${i}.${j}`, "expected an object"];
  }
  return undefined;
}

/** Builds the reply to `request` from node `senderid`; throws a ProtocolError on an empty payload. */
export function newReply(request: Request, senderid: string, payload: string, time = nowSeconds()): Reply {
  const reply: Reply = {
    protocol: REPLY_V1,
    message: payload,
    envelope: {
      requestid: request.envelope.requestid,
      senderid,
      agent: request.envelope.agent,
      time,
    },
  };
  return orThrow(validateWith("reply", replySchema, reply));
}

function orThrow<T>(decoded: Decoded<T>): T {
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

/** Unix second after which the request is void (ignoring the symmetric "from the future" bound). */
export function requestExpiry(request: Request): number {
  return request.envelope.time + request.envelope.ttl;
}

/**
 * The Choria server rule: a request is valid only while |now − time| < ttl, so one stamped further in
 * the future than its ttl (a skewed or forged clock) is refused as well as an old one.
 */
export function isExpired(request: Request, nowSecondsValue: number): boolean {
  return !(Math.abs(nowSecondsValue - request.envelope.time) < request.envelope.ttl);
}

/** The request itself if it is inside its TTL window at `now`, else an "expired" error naming the time. */
export function checkRequestTime(request: Request, now: number): Decoded<Request> {
  if (!isExpired(request, now)) return ok(request);
  const { time, ttl } = request.envelope;
  const when = time > now ? "in the future" : "ago";
  return fail(
    "request",
    "expired",
    "envelope.time",
    `created ${Math.abs(now - time)}s ${when}, outside its ${ttl}s ttl`,
  );
}

/**
 * The payload text a Choria server hands its agent: a strict (padded, standard) base64 decode when that
 * succeeds and yields UTF-8, else the raw text. Go clients send RPC JSON raw; legacy discovery sends
 * base64("ping").
 */
export function requestPayloadText(request: Request): string {
  return decodeBase64Text(request.message) ?? request.message;
}
