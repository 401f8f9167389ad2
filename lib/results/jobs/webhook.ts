import { decodeBase64, encodeBase64 } from "../../protocol/base64.ts";
import { constantTimeEqual } from "../../security/compare.ts";

/*
 * Standard Webhooks, symmetric scheme (v1): the sender signs `<webhook-id>.<webhook-timestamp>.<body>` with
 * HMAC-SHA256 under a shared secret written `whsec_<base64>`, and sends
 *   webhook-id:        the message id, the same on every retry (receivers dedupe on it)
 *   webhook-timestamp: Unix seconds of this attempt
 *   webhook-signature: `v1,<base64 MAC>`, space-separated when signed with several secrets
 * WebCrypto only, so it runs in every runtime.
 */

export const SECRET_PREFIX = "whsec_";
/** How far a receiver lets webhook-timestamp stray from its clock, as the reference libraries do. */
export const TIMESTAMP_TOLERANCE_S = 300;

export interface WebhookHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** The key bytes of a `whsec_` secret (the prefix is optional), or undefined when it is not base64. */
export function webhookSecretBytes(secret: string): Uint8Array | undefined {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = decodeBase64(encoded);
  return bytes === undefined || bytes.byteLength === 0 ? undefined : bytes;
}

/** A fresh secret: 32 random bytes (the scheme asks for at least 24). */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${encodeBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

async function mac(key: Uint8Array, id: string, timestamp: number, body: string): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signed = await crypto.subtle.sign(
    "HMAC",
    cryptoKey,
    new TextEncoder().encode(`${id}.${timestamp}.${body}`),
  );
  return encodeBase64(new Uint8Array(signed));
}

/** `v1,<signature>` of one message. Throws on a secret that is not base64: that is a configuration error. */
export async function signWebhook(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): Promise<string> {
  const key = webhookSecretBytes(secret);
  if (key === undefined) throw new Error("the webhook secret is not whsec_<base64>");
  if (id.includes(".")) throw new Error("a webhook id must not contain '.'");
  return `v1,${await mac(key, id, timestamp, body)}`;
}

/** The three headers of one delivery attempt made at `nowMs`. */
export async function webhookHeaders(
  secret: string,
  id: string,
  body: string,
  nowMs: number,
): Promise<WebhookHeaders> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signWebhook(secret, id, timestamp, body),
  };
}

/**
 * What a receiver checks: a timestamp within the tolerance of its clock and one `v1` signature that matches
 * the body exactly as received. Never throws.
 */
export async function verifyWebhook(
  secret: string,
  headers: { get(name: string): string | null | undefined },
  body: string,
  nowMs: number,
): Promise<boolean> {
  const key = webhookSecretBytes(secret);
  const id = headers.get("webhook-id");
  const timestampText = headers.get("webhook-timestamp");
  const signatures = headers.get("webhook-signature");
  if (key === undefined || !id || !timestampText || !signatures || !/^\d{1,12}$/.test(timestampText))
    return false;
  const timestamp = Number(timestampText);
  if (Math.abs(nowMs / 1000 - timestamp) > TIMESTAMP_TOLERANCE_S) return false;
  const expected = await mac(key, id, timestamp, body);
  let matched = false;
  for (const signature of signatures.split(" ")) {
    const [version, value] = signature.split(",", 2);
    if (version === "v1" && value !== undefined && constantTimeEqual(value, expected)) matched = true;
  }
  return matched;
}
