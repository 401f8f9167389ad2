import { type NodeReply, openReplySync, type ReplyDigest } from "../../client/mod.ts";
import { type Decoded, jsonDepthExceeds, MAX_JSON_DEPTH } from "../../protocol/mod.ts";

/*
 * The collector opens every reply it stores, and the schema checks of the general decoder (lib/client,
 * zod over four layers, each in its own Decoded wrapper) were the largest part of its CPU per reply. Here
 * the usual reply is checked by hand, field by field, for what those schemas demand of it; anything this
 * path is not sure of (another dialect's oddity, a discovery pong, a failed check of any kind) is handed
 * to openReplySync, which decides and says why. So a reply is taken here only when the general decoder
 * would take it too, and with the same values; refusals always come from the general decoder.
 */

/** What the collector keeps of a node's reply. */
export type OpenedReply = Pick<NodeReply, "sender" | "requestId" | "payload" | "hash" | "rpc">;

const TRANSPORT_V1 = "choria:transport:1";
const SECURE_REPLY_V1 = "choria:secure:reply:1";
const REPLY_V1 = "choria:reply:1";
// Go emits the string "{}" for nil reply data; it, null and absence all read as no data (lib/protocol/rpc.ts).
const NO_DATA = new Set<unknown>([undefined, null, "{}"]);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Opens a reply as openReplySync does (same checks, same values), cheaply for the usual reply. */
export function openJobReply(body: Uint8Array, digest: ReplyDigest, maxBytes: number): Decoded<OpenedReply> {
  const opened = body.byteLength <= maxBytes ? quickOpen(body, digest) : undefined;
  return opened === undefined ? openReplySync(body, digest, maxBytes) : { ok: true, value: opened };
}

function quickOpen(body: Uint8Array, digest: ReplyDigest): OpenedReply | undefined {
  const transport = parse(body);
  if (!isRecord(transport) || typeof transport.data !== "string" || !plainHeaders(transport))
    return undefined;
  const secureText = base64Text(transport.data);
  const secure = secureText === undefined ? undefined : parse(secureText);
  if (
    !isRecord(secure) ||
    secure.protocol !== SECURE_REPLY_V1 ||
    !isFilled(secure.message) ||
    !isFilled(secure.hash) ||
    // A hash covers a public message and proves nothing secret, so it needs no constant-time compare.
    digest(secure.message) !== secure.hash
  )
    return undefined;
  const reply = parse(secure.message);
  if (!isRecord(reply) || reply.protocol !== REPLY_V1 || !isFilled(reply.message)) return undefined;
  const envelope = reply.envelope;
  if (
    !isRecord(envelope) ||
    typeof envelope.requestid !== "string" ||
    envelope.requestid.length !== 32 ||
    typeof envelope.senderid !== "string" ||
    !isFilled(envelope.agent) ||
    envelope.agent === "discovery" ||
    !Number.isSafeInteger(envelope.time)
  )
    return undefined;
  const rpc = parse(reply.message);
  if (
    !isRecord(rpc) ||
    typeof rpc.action !== "string" ||
    typeof rpc.statusmsg !== "string" ||
    !isStatusCode(rpc.statuscode)
  )
    return undefined;
  return {
    sender: envelope.senderid,
    requestId: envelope.requestid,
    payload: reply.message,
    hash: secure.hash,
    rpc: {
      action: rpc.action,
      statuscode: rpc.statuscode,
      statusmsg: rpc.statusmsg,
      data: NO_DATA.has(rpc.data) ? {} : rpc.data,
    },
  };
}

/** The parsed JSON, or undefined for text that is not JSON or nests too deep (the general decoder says). */
function parse(input: string | Uint8Array): unknown {
  if (jsonDepthExceeds(input, MAX_JSON_DEPTH)) return undefined;
  try {
    return JSON.parse(typeof input === "string" ? input : utf8.decode(input));
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isFilled(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}

function isStatusCode(value: unknown): value is 0 | 1 | 2 | 3 | 4 | 5 {
  return value === 0 || value === 1 || value === 2 || value === 3 || value === 4 || value === 5;
}

/**
 * The transport headers when every one of them is as both dialects' schemas want it (v1 packets; seed
 * packets, which have no `protocol`, only without seen-by hops, whose shape differs).
 */
function plainHeaders(transport: Record<string, unknown>): boolean {
  const { protocol, headers } = transport;
  if ((protocol !== TRANSPORT_V1 && protocol !== undefined) || !isRecord(headers)) return false;
  const { mc_sender, federation } = headers;
  const seenBy = headers["seen-by"];
  const replyTo = headers["reply-to"];
  if (replyTo !== undefined && !isFilled(replyTo)) return false;
  if (mc_sender !== undefined && !isFilled(mc_sender)) return false;
  if (seenBy !== undefined && (protocol === undefined || !Array.isArray(seenBy) || !seenBy.every(isHop)))
    return false;
  if (federation === undefined) return true;
  if (!isRecord(federation)) return false;
  const { req, target } = federation;
  return (
    isFilled(req) &&
    req.length <= 255 &&
    (federation["reply-to"] === undefined || isFilled(federation["reply-to"])) &&
    (target === undefined || (Array.isArray(target) && target.every(isFilled)))
  );
}

/** A v1 seen-by hop: [in, processor, out], or [in, processor] from older clients. */
function isHop(hop: unknown): boolean {
  return (
    Array.isArray(hop) &&
    (hop.length === 3 || hop.length === 2) &&
    hop.every((part: unknown) => typeof part === "string")
  );
}

/**
 * UTF-8 text from padded standard base64 without line breaks, or undefined for anything else (including
 * the line-wrapped base64 the general decoder also takes). `atob` alone forgives missing padding and
 * skips whitespace, so both are ruled out first.
 */
function base64Text(text: string): string | undefined {
  if (text.length % 4 !== 0 || /\s/.test(text)) return undefined;
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    return undefined;
  }
  // ASCII decodes to itself; other bytes need the strict decoder (and a BOM is not text of the message).
  if (!/[^\x00-\x7f]/.test(binary)) return binary;
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
