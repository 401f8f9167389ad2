import { z } from "zod";
import { decodeBase64Text, encodeBase64Text } from "./base64.ts";
import { type Decoded, fail, type Layer, ok } from "./errors.ts";
import { fieldPath, parseJson } from "./json.ts";
import type { TransportPacket } from "./transport.ts";

export const SECURE_REQUEST_V1 = "choria:secure:request:1";
export const SECURE_REPLY_V1 = "choria:secure:reply:1";

// `message` is the exact JSON text of the inner request or reply, carried as a JSON string (not base64,
// whatever the schema's description says). Signatures and hashes cover these bytes, so they are kept
// as received and never re-serialised.
export const secureRequestSchema = z.looseObject({
  protocol: z.literal(SECURE_REQUEST_V1),
  message: z.string().min(1),
  signature: z.string().min(1),
  pubcert: z.string().min(1),
});

export const secureReplySchema = z.looseObject({
  protocol: z.literal(SECURE_REPLY_V1),
  message: z.string().min(1),
  hash: z.string().min(1),
});

export type SecureRequest = z.infer<typeof secureRequestSchema>;
export type SecureReply = z.infer<typeof secureReplySchema>;

const OTHER_SECURE_VERSION =
  /^(?:choria:secure:(?:request|reply):\d+|io\.choria\.protocol\.v\d+\.secure_(?:request|reply))$/;

function decodeSecure<T>(layer: Layer, schema: z.ZodType<T>, expected: string, text: string): Decoded<T> {
  const parsed = parseJson(layer, text);
  if (!parsed.ok) return parsed;
  const protocol = (parsed.value as { protocol?: unknown } | null)?.protocol;
  if (typeof protocol === "string" && protocol !== expected && OTHER_SECURE_VERSION.test(protocol)) {
    return fail(layer, "unsupported_protocol", "protocol", `unsupported protocol version ${protocol}`);
  }
  const result = schema.safeParse(parsed.value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    return fail(layer, "invalid_field", fieldPath(issue.path), issue.message);
  }
  return ok(result.data);
}

export function decodeSecureRequest(json: string): Decoded<SecureRequest> {
  return decodeSecure("secure_request", secureRequestSchema, SECURE_REQUEST_V1, json);
}

export function decodeSecureReply(json: string): Decoded<SecureReply> {
  return decodeSecure("secure_reply", secureReplySchema, SECURE_REPLY_V1, json);
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
