import * as z from "zod/mini";
import { decodeBase64Text, encodeBase64Text } from "./base64.ts";
import { type Decoded, fail } from "./errors.ts";
import { decodeVersioned, type FieldProblem, isRecord } from "./json.ts";
import type { TransportPacket } from "./transport.ts";

const SECURE_REQUEST_V1 = "choria:secure:request:1";
const SECURE_REPLY_V1 = "choria:secure:reply:1";

// `message` is the exact JSON text of the inner request or reply, carried as a JSON string (not base64,
// whatever the schema's description says). Signatures and hashes cover these bytes, so they are kept
// as received and never re-serialised.
const secureRequestSchema = z.looseObject({
  protocol: z.literal(SECURE_REQUEST_V1),
  message: z.string().check(z.minLength(1)),
  signature: z.string().check(z.minLength(1)),
  pubcert: z.string().check(z.minLength(1)),
});

/** The secure reply's shape; decodeSecureReply checks it by hand (secureReplyProblem), to the same verdicts. */
export const secureReplySchema = z.looseObject({
  protocol: z.literal(SECURE_REPLY_V1),
  message: z.string().check(z.minLength(1)),
  hash: z.string().check(z.minLength(1)),
});

export type SecureRequest = z.infer<typeof secureRequestSchema>;
export type SecureReply = z.infer<typeof secureReplySchema>;

const OTHER_SECURE_REQUEST_VERSION =
  /^(?:choria:secure:request:\d+|io\.choria\.protocol\.v\d+\.secure_request)$/;
const OTHER_SECURE_REPLY_VERSION = /^(?:choria:secure:reply:\d+|io\.choria\.protocol\.v\d+\.secure_reply)$/;

export function decodeSecureRequest(json: string): Decoded<SecureRequest> {
  return decodeVersioned(json, {
    layer: "secure_request",
    schema: secureRequestSchema,
    protocol: SECURE_REQUEST_V1,
    otherVersions: OTHER_SECURE_REQUEST_VERSION,
  });
}

export function decodeSecureReply(json: string): Decoded<SecureReply> {
  return decodeVersioned(json, {
    layer: "secure_reply",
    schema: secureReplySchema,
    protocol: SECURE_REPLY_V1,
    otherVersions: OTHER_SECURE_REPLY_VERSION,
    check: secureReplyProblem,
  });
}

/** secureReplySchema without zod, for the same reason as replyProblem (message.ts): one per reply. */
function secureReplyProblem(value: unknown): FieldProblem | undefined {
  if (!isRecord(value)) return ["", "expected an object"];
  if (value.protocol !== SECURE_REPLY_V1) return ["protocol", `expected "${SECURE_REPLY_V1}"`];
  for (const field of ["message", "hash"] as const) {
    const text = value[field];
    if (typeof text !== "string" || text.length === 0) return [field, "expected a non-empty string"];
  }
  return undefined;
}

/** Opens a transport's base64 `data` as a secure request. */
export function secureRequestOf(packet: TransportPacket): Decoded<SecureRequest> {
  const text = decodeBase64Text(packet.data);
  if (text === undefined)
    return fail("transport", "invalid_base64", "data", "not padded standard base64 of UTF-8");
  return decodeSecureRequest(text);
}

/** Opens a transport's base64 `data` as a secure reply. */
export function secureReplyOf(packet: TransportPacket): Decoded<SecureReply> {
  const text = decodeBase64Text(packet.data);
  if (text === undefined)
    return fail("transport", "invalid_base64", "data", "not padded standard base64 of UTF-8");
  return decodeSecureReply(text);
}

export function encodeSecureRequest(message: string, signature: string, pubcert: string): string {
  return JSON.stringify({ protocol: SECURE_REQUEST_V1, message, signature, pubcert });
}

export function encodeSecureReply(message: string, hash: string): string {
  return JSON.stringify({ protocol: SECURE_REPLY_V1, message, hash });
}

/** The transport `data` for a secure message: standard padded base64 of its JSON, as Go's []byte. */
export function transportData(secureJson: string): string {
  return encodeBase64Text(secureJson);
}
