// The RFC 9421 algorithms this gateway accepts, on WebCrypto alone. ECDSA signatures are the raw r||s
// form (§3.3.4), which is exactly what WebCrypto produces and expects, so no DER conversion is needed.
import type { Bytes } from "../mod.ts";
import { constantTimeEqual } from "../mod.ts";
import { plainBytes } from "./digest.ts";

const SIGNATURE_SCHEMES = ["ed25519", "ecdsa-p256-sha256", "hmac-sha256"] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];
export const KEY_SCHEMES = [...SIGNATURE_SCHEMES, "bearer"] as const;
export type KeyScheme = (typeof KEY_SCHEMES)[number];
export type AsymmetricScheme = Exclude<SignatureScheme, "hmac-sha256">;

export function isSignatureScheme(value: string): value is SignatureScheme {
  return (SIGNATURE_SCHEMES as readonly string[]).includes(value);
}

/** An HMAC key shorter than its hash output weakens it (RFC 2104 §3); refuse such keys outright. */
export const MIN_HMAC_KEY_BYTES = 32;

const IMPORT_PARAMS = {
  ed25519: { name: "Ed25519" },
  "ecdsa-p256-sha256": { name: "ECDSA", namedCurve: "P-256" },
} as const satisfies Record<AsymmetricScheme, AlgorithmIdentifier | EcKeyImportParams>;

const SIGN_PARAMS = {
  ed25519: { name: "Ed25519" },
  "ecdsa-p256-sha256": { name: "ECDSA", hash: "SHA-256" },
} as const satisfies Record<AsymmetricScheme, AlgorithmIdentifier | EcdsaParams>;

const SIGNATURE_LENGTH: Record<AsymmetricScheme, number> = { ed25519: 64, "ecdsa-p256-sha256": 64 };

export type PublicKeyInput = { format: "raw" | "spki"; bytes: Bytes } | { format: "jwk"; jwk: JsonWebKey };

export function importPublicKey(scheme: AsymmetricScheme, input: PublicKeyInput): Promise<CryptoKey> {
  return input.format === "jwk"
    ? crypto.subtle.importKey("jwk", input.jwk, IMPORT_PARAMS[scheme], false, ["verify"])
    : crypto.subtle.importKey(input.format, input.bytes, IMPORT_PARAMS[scheme], false, ["verify"]);
}

export function importPrivateKey(
  scheme: AsymmetricScheme,
  input: { format: "pkcs8"; bytes: Bytes } | { format: "jwk"; jwk: JsonWebKey },
): Promise<CryptoKey> {
  return input.format === "jwk"
    ? crypto.subtle.importKey("jwk", input.jwk, IMPORT_PARAMS[scheme], false, ["sign"])
    : crypto.subtle.importKey("pkcs8", input.bytes, IMPORT_PARAMS[scheme], false, ["sign"]);
}

export function importHmacKey(secret: Bytes): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

export async function signBase(scheme: SignatureScheme, key: CryptoKey, base: string): Promise<Bytes> {
  const data = new TextEncoder().encode(base);
  const params = scheme === "hmac-sha256" ? "HMAC" : SIGN_PARAMS[scheme];
  return new Uint8Array(await crypto.subtle.sign(params, key, data));
}

/**
 * Checks an asymmetric signature on the calling thread (Node: node:crypto, see ./node.ts). WebCrypto hands
 * each verification to a thread pool and back, which for one small message costs more CPU than the check
 * itself and two thread wake-ups of latency.
 */
export type SyncVerifier = (
  scheme: AsymmetricScheme,
  key: CryptoKey,
  data: Uint8Array,
  signature: Uint8Array,
) => boolean;

/**
 * True when `signature` is valid for `base`; HMACs are recomputed and compared in constant time. With
 * `sync`, asymmetric signatures are checked by it instead of by WebCrypto.
 */
export async function verifyBase(
  scheme: SignatureScheme,
  key: CryptoKey,
  base: string,
  signature: Uint8Array,
  sync?: SyncVerifier,
): Promise<boolean> {
  if (scheme === "hmac-sha256") return constantTimeEqual(await signBase(scheme, key, base), signature);
  if (signature.length !== SIGNATURE_LENGTH[scheme]) return false;
  const data = new TextEncoder().encode(base);
  if (sync !== undefined) return sync(scheme, key, data, signature);
  return crypto.subtle.verify(SIGN_PARAMS[scheme], key, plainBytes(signature), data);
}

/** Generates a key pair for `scheme`, extractable so that it can be written to a key file. */
export async function generateKeyPair(scheme: AsymmetricScheme): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(IMPORT_PARAMS[scheme], true, ["sign", "verify"])) as CryptoKeyPair;
}
