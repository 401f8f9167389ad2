import { decodeBase64, encodeBase64, fromUtf8, utf8 } from "../../protocol/mod.ts";

/*
 * Callback signing secrets in job records are sealed: AES-256-GCM under a key that only the gateways
 * (which seal) and the collectors (which open, to sign the delivery) are given, `--callback-seal-key`.
 * Why not store less: a Standard Webhooks signature is an HMAC keyed by the secret itself, so whoever
 * signs a delivery needs the secret, and the collector signs it only when the job ends; there is nothing
 * smaller to keep that would still let it sign. Why not leave it in clear: the job record sits in a
 * JetStream KV bucket that every NATS user with access to the bucket, every stream backup and `nats kv
 * get` can read, for the jobs' whole retention; a secret read there lets anyone forge completions to the
 * caller's receiver. Sealed, the bucket holds ciphertext bound to its callback URL (the URL is the
 * additional data, so a sealed secret moved onto another URL does not open). WebCrypto only, as the
 * gateway seals in Workers too.
 *
 * Form: `v1.<base64 IV (12 bytes)>.<base64 ciphertext and tag>`.
 */

const SEALED = /^v1\.([A-Za-z0-9+/]+=*)\.([A-Za-z0-9+/]+=*)$/;
const encoder = new TextEncoder();

/** A fresh key for `--callback-seal-key`: base64 of 32 random bytes. */
export function newSealKey(): string {
  return encodeBase64(crypto.getRandomValues(new Uint8Array(32)));
}

/** Imports a `--callback-seal-key` value; throws on anything but base64 of 32 bytes. */
export async function importSealKey(text: string): Promise<CryptoKey> {
  const bytes = decodeBase64(text.trim());
  if (bytes === undefined || bytes.byteLength !== 32)
    throw new Error("a callback seal key is base64 of 32 bytes, e.g. from openssl rand -base64 32");
  return crypto.subtle.importKey("raw", bytes as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

function additionalData(url: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`choria-edge callback secret\n${url}`);
}

export async function sealSecret(key: CryptoKey, secret: string, url: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(url) },
    key,
    utf8(secret) as Uint8Array<ArrayBuffer>,
  );
  return `v1.${encodeBase64(iv)}.${encodeBase64(new Uint8Array(sealed))}`;
}

/** The secret, or undefined when the text is not a sealed secret for this URL under this key. */
export async function openSecret(key: CryptoKey, sealed: string, url: string): Promise<string | undefined> {
  const match = SEALED.exec(sealed);
  const iv = match ? decodeBase64(match[1]!) : undefined;
  const data = match ? decodeBase64(match[2]!) : undefined;
  if (iv === undefined || data === undefined || iv.byteLength !== 12) return undefined;
  try {
    const opened = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: iv as Uint8Array<ArrayBuffer>, additionalData: additionalData(url) },
      key,
      data as Uint8Array<ArrayBuffer>,
    );
    return fromUtf8(new Uint8Array(opened));
  } catch {
    return undefined;
  }
}
