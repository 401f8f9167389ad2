import { encodeBase64 } from "../../protocol/mod.ts";
import { type Bytes, base64Bytes, constantTimeEqual } from "../mod.ts";
import type { VerifyContext } from "./support.ts";
import {
  asBytes,
  concatBytes,
  freshness,
  hmacSha256,
  parseUnixSeconds,
  refuse,
  strictUtf8,
} from "./support.ts";
import type { WebhookVerdict } from "./types.ts";

/*
 * Standard Webhooks (spec 1.0.0): the sender signs `<webhook-id>.<webhook-timestamp>.<body>` and sends
 * `webhook-signature` as a space-separated list of `v1,<base64 HMAC-SHA256>` (shared `whsec_<base64>`
 * secret) and `v1a,<base64 ed25519 signature>` (keys `whpk_`/`whsk_`) entries, several while keys rotate.
 * One matching entry suffices; versions we do not know are skipped, as the spec's forward compatibility
 * asks. Svix, where the scheme comes from, sends the same values under `svix-*` names: accepted too,
 * since it costs only the choice of prefix.
 *
 * v1 is HMAC-SHA256 under the base64 key of a `whsec_` secret, over the body as text, exactly as the
 * `standardwebhooks` package signs (the unit test checks against it). The package itself is not used: its
 * verify reads Date.now(), throws instead of saying why and parses the body as JSON, and it brings a
 * base64 and a SHA-256 of its own (~10 KiB minified) into a Worker that has WebCrypto's. Taking the body
 * as text, a v1 signature over a body that is not UTF-8 cannot match (the package's verify has the same
 * limit). v1a is WebCrypto Ed25519 over the raw bytes: the package has no asymmetric support.
 */

const SECRET_KEY_PREFIX = "whsec_";
const PUBLIC_KEY_PREFIX = "whpk_";
const HMAC_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
const ED25519_PUBLIC_KEY_BYTES = 32;

interface SignatureEntries {
  v1: string[];
  v1a: Uint8Array[];
}

function headerSet(
  headers: Headers,
): { id: string | null; timestamp: string | null; signature: string } | undefined {
  for (const prefix of ["webhook-", "svix-"]) {
    const signature = headers.get(`${prefix}signature`);
    if (signature !== null) {
      return { id: headers.get(`${prefix}id`), timestamp: headers.get(`${prefix}timestamp`), signature };
    }
  }
  return undefined;
}

/** Well-formed v1 and v1a entries; anything else in the list is skipped. */
function parseSignatures(header: string): SignatureEntries {
  const entries: SignatureEntries = { v1: [], v1a: [] };
  for (const entry of header.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0) continue;
    const version = entry.slice(0, comma);
    const value = entry.slice(comma + 1);
    const bytes = base64Bytes(value);
    if (version === "v1" && bytes?.length === HMAC_BYTES) entries.v1.push(value);
    if (version === "v1a" && bytes?.length === ED25519_SIGNATURE_BYTES) entries.v1a.push(bytes);
  }
  return entries;
}

/** The HMAC key of a `whsec_<base64>` secret (the prefix optional, as the package takes it). */
function symmetricKey(secret: string): Bytes | undefined {
  const key = base64Bytes(
    secret.startsWith(SECRET_KEY_PREFIX) ? secret.slice(SECRET_KEY_PREFIX.length) : secret,
  );
  return key !== undefined && key.length > 0 ? key : undefined;
}

/** The raw 32 bytes of a `whpk_<base64>` key (prefix optional), or undefined when it is not that. */
function ed25519PublicKeyBytes(text: string): Bytes | undefined {
  const raw = base64Bytes(text.startsWith(PUBLIC_KEY_PREFIX) ? text.slice(PUBLIC_KEY_PREFIX.length) : text);
  return raw?.length === ED25519_PUBLIC_KEY_BYTES ? raw : undefined;
}

/** Problems with Standard Webhooks key material, by position, for configuration errors. */
export function standardSecretsProblems(secrets: string[], publicKeys: string[]): string[] {
  return [
    ...secrets.flatMap((secret, i) =>
      symmetricKey(secret) === undefined ? [`secrets[${i}] is not whsec_<base64>`] : [],
    ),
    ...publicKeys.flatMap((key, i) =>
      ed25519PublicKeyBytes(key) === undefined ? [`publicKeys[${i}] is not whpk_<base64 of 32 bytes>`] : [],
    ),
  ];
}

async function ed25519PublicKey(text: string): Promise<CryptoKey | undefined> {
  const raw = ed25519PublicKeyBytes(text);
  if (raw === undefined) return undefined;
  try {
    return await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
  } catch {
    return undefined;
  }
}

async function anySymmetricMatch(
  context: VerifyContext,
  signatures: string[],
  id: string,
  timestamp: number,
): Promise<boolean> {
  if (signatures.length === 0) return false;
  const text = strictUtf8(context.body);
  if (text === undefined) return false;
  for (const secret of context.secrets) {
    const key = symmetricKey(secret);
    if (key === undefined) continue;
    const expected = encodeBase64(await hmacSha256(key, `${id}.${timestamp}.${text}`));
    // Every entry is compared, so the time taken does not tell which one matched.
    let matched = false;
    for (const signature of signatures) matched = constantTimeEqual(signature, expected) || matched;
    if (matched) return true;
  }
  return false;
}

async function anyAsymmetricMatch(
  context: VerifyContext,
  signatures: Uint8Array[],
  content: Bytes,
): Promise<boolean> {
  if (signatures.length === 0) return false;
  for (const text of context.publicKeys) {
    const key = await ed25519PublicKey(text);
    if (key === undefined) continue;
    for (const signature of signatures) {
      if (await crypto.subtle.verify("Ed25519", key, new Uint8Array(signature), content)) return true;
    }
  }
  return false;
}

export async function verifyStandardWebhook(context: VerifyContext): Promise<WebhookVerdict> {
  const headers = headerSet(context.headers);
  if (headers === undefined)
    return refuse("missing_signature", "no webhook-signature (or svix-signature) header");
  const id = headers.id?.trim();
  if (!id) return refuse("missing_delivery_id", "no webhook-id header, and the signature covers it");
  // An id with a '.' would let the boundary between id, timestamp and body move under the same signature.
  if (id.includes(".")) return refuse("malformed_signature", "webhook-id contains '.'");
  const timestampText = headers.timestamp?.trim() ?? "";
  const timestamp = parseUnixSeconds(timestampText);
  // v1 is checked over the number's canonical spelling, as the package signs it, so only that can match.
  if (timestamp === undefined || String(timestamp) !== timestampText) {
    return refuse("malformed_signature", "webhook-timestamp is missing or not Unix seconds");
  }
  const signatures = parseSignatures(headers.signature);
  const offered = signatures.v1.length + signatures.v1a.length;
  if (offered === 0)
    return refuse("malformed_signature", "webhook-signature holds no well-formed v1 or v1a entry");
  const content = concatBytes(`${id}.${timestampText}.`, context.body);
  const matched =
    (await anySymmetricMatch(context, signatures.v1, id, timestamp)) ||
    (await anyAsymmetricMatch(context, signatures.v1a, content));
  if (!matched) {
    return refuse(
      "bad_signature",
      `none of ${signatures.v1.length} v1 and ${signatures.v1a.length} v1a signature(s) matches the ` +
        `${context.secrets.length} secret(s) and ${context.publicKeys.length} public key(s) configured` +
        (signatures.v1.length > 0 && strictUtf8(context.body) === undefined
          ? " (the body is not UTF-8)"
          : ""),
    );
  }
  const stale = freshness(timestamp, context);
  if (stale) return stale;
  return { ok: true, scheme: "standard-webhooks", deliveryId: id, timestamp };
}

/** A `v1,<base64>` entry for `webhook-signature`. Throws when the secret is not `whsec_<base64>`. */
export async function signStandardV1(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<string> {
  const key = symmetricKey(secret);
  if (key === undefined) throw new Error("a Standard Webhooks secret is whsec_<base64>");
  return `v1,${encodeBase64(await hmacSha256(key, `${id}.${timestamp}.`, asBytes(body)))}`;
}

/** A `v1a,<base64>` entry for `webhook-signature`, signed with an Ed25519 private key. */
export async function signStandardV1a(
  privateKey: CryptoKey,
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<string> {
  const content = concatBytes(`${id}.${timestamp}.`, asBytes(body));
  return `v1a,${encodeBase64(new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, content)))}`;
}

/** The `whpk_<base64>` form of an Ed25519 public key, as a receiver configures it. */
export async function standardPublicKey(publicKey: CryptoKey): Promise<string> {
  return `${PUBLIC_KEY_PREFIX}${encodeBase64(new Uint8Array(await crypto.subtle.exportKey("raw", publicKey)))}`;
}
