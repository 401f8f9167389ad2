import type { Bytes } from "../mod.ts";
import type { WebhookRefusal, WebhookRefusalReason } from "./types.ts";

const utf8Encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF in the text, so encoding the text again gives back the signed bytes.
const strictUtf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** What every sender's verifier gets: the configured material with blanks dropped, and the clock. */
export interface VerifyContext {
  secrets: string[];
  publicKeys: string[];
  headers: Headers;
  body: Uint8Array;
  nowSeconds: number;
  toleranceSeconds: number;
}

export function refuse(reason: WebhookRefusalReason, detail: string): WebhookRefusal {
  return { ok: false, reason, detail };
}

export function concatBytes(...parts: (string | Uint8Array)[]): Bytes {
  const chunks = parts.map((part) => (typeof part === "string" ? utf8Encoder.encode(part) : part));
  const joined = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/** HMAC-SHA256 of the concatenated parts (strings as UTF-8) under the raw key bytes. */
export async function hmacSha256(key: Uint8Array, ...parts: (string | Uint8Array)[]): Promise<Bytes> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, concatBytes(...parts)));
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes))));
}

export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The body as text, or undefined when it is not valid UTF-8 (never replaced with U+FFFD). */
export function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function asBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? utf8Encoder.encode(body) : body;
}

/** Unix seconds written as plain decimal digits (at most 12, which is beyond the year 30000). */
export function parseUnixSeconds(text: string): number | undefined {
  return /^\d{1,12}$/.test(text) ? Number(text) : undefined;
}

/**
 * Refuses a signed timestamp further than the tolerance from the receiver's clock, in the past (a replay)
 * or in the future (a sender's clock, or a capture held back for later). A clock that is not a number
 * refuses everything rather than accepting everything.
 */
export function freshness(timestamp: number, context: VerifyContext): WebhookRefusal | undefined {
  const skew = context.nowSeconds - timestamp;
  if (Math.abs(skew) <= context.toleranceSeconds) return undefined;
  const direction = skew > 0 ? `${skew} s old` : `${-skew} s in the future`;
  return refuse(
    "stale",
    `the signed timestamp is ${direction}; the tolerance is ${context.toleranceSeconds} s`,
  );
}

/** Parses JSON without throwing; undefined for anything that is not a JSON object. */
export function jsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function stringField(object: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = object?.[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}
