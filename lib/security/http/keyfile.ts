// Caller-side key files and key generation. A key file is what a caller keeps (a private JWK or a secret);
// the matching config entry is what the gateway's keys document holds (a public key or a token hash).
import { encodeBase64 } from "../../protocol/mod.ts";
import { pkcs8FromPem } from "../mod.ts";
import {
  type AsymmetricScheme,
  generateKeyPair,
  importPrivateKey,
  KEY_SCHEMES,
  type KeyScheme,
} from "./algorithms.ts";
import { digestBytes } from "./digest.ts";
import { type GatewayKeyConfig, toHex } from "./keys.ts";
import type { Policy } from "./policy.ts";
import { base64url, type SigningKey } from "./sign.ts";

/** The JSON a caller keeps: `{id, scheme, privateKey: JWK}` or `{id, scheme, secret}`. */
export interface KeyFile {
  id: string;
  scheme: KeyScheme;
  privateKey?: JsonWebKey;
  secret?: string;
}

export interface GeneratedKey {
  /** Write this with mode 0600: it holds the private key or the secret. */
  keyFile: KeyFile;
  /** The entry for the gateway's keys document; for hmac-sha256 it necessarily holds the shared secret. */
  config: GatewayKeyConfig;
}

/** An empty policy: the key can do nothing until its clusters, collectives, agents and actions are listed. */
const DENY_ALL: Policy = { clusters: [], collectives: [], agents: [], actions: [] };

export async function generateHttpKey(options: {
  id: string;
  caller: string;
  scheme: KeyScheme;
  policy?: Policy;
}): Promise<GeneratedKey> {
  const { id, caller, scheme } = options;
  const policy = options.policy ?? DENY_ALL;
  if (scheme === "bearer") {
    const token = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const hash = toHex(await digestBytes("sha-256", new TextEncoder().encode(token)));
    return {
      keyFile: { id, scheme, secret: token },
      config: { id, caller, scheme, secret: `sha256:${hash}`, policy },
    };
  }
  if (scheme === "hmac-sha256") {
    const secret = encodeBase64(crypto.getRandomValues(new Uint8Array(32)));
    return { keyFile: { id, scheme, secret }, config: { id, caller, scheme, secret, policy } };
  }
  const pair = await generateKeyPair(scheme);
  const privateKey = await crypto.subtle.exportKey("jwk", pair.privateKey);
  const publicKey = encodeBase64(new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)));
  return { keyFile: { id, scheme, privateKey }, config: { id, caller, scheme, publicKey, policy } };
}

export type KeyFileResult = { ok: true; key: SigningKey } | { ok: false; error: string };

/**
 * Reads a signing key from a key file's text: the JSON written by generateHttpKey, a bare private JWK
 * (Ed25519 or P-256), or a PKCS#8 PEM. `id` (from the command line) wins over the file's own.
 */
export async function signingKeyFromText(text: string, id?: string): Promise<KeyFileResult> {
  if (text.includes("-----BEGIN")) return pemSigningKey(text, id);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: "the key file is neither JSON nor PEM" };
  }
  if (typeof json !== "object" || json === null)
    return { ok: false, error: "the key file is not a JSON object" };
  const file = json as Partial<KeyFile> & JsonWebKey;
  const keyId = id ?? file.id;
  if (typeof keyId !== "string" || keyId === "") return { ok: false, error: "no key id: pass --key-id" };
  if (typeof file.kty === "string") {
    const scheme = jwkScheme(file);
    return scheme === undefined
      ? { ok: false, error: "the JWK is neither an Ed25519 nor a P-256 private key" }
      : { ok: true, key: { id: keyId, scheme, privateKey: file } };
  }
  if (typeof file.scheme !== "string" || !(KEY_SCHEMES as readonly string[]).includes(file.scheme))
    return { ok: false, error: `scheme must be one of ${KEY_SCHEMES.join(", ")}` };
  if (file.scheme === "bearer" || file.scheme === "hmac-sha256") {
    if (typeof file.secret !== "string")
      return { ok: false, error: `a ${file.scheme} key file needs a secret` };
    return { ok: true, key: { id: keyId, scheme: file.scheme, secret: file.secret } };
  }
  if (typeof file.privateKey !== "object" || file.privateKey === null)
    return { ok: false, error: `a ${file.scheme} key file needs a privateKey JWK` };
  return { ok: true, key: { id: keyId, scheme: file.scheme, privateKey: file.privateKey } };
}

function jwkScheme(jwk: JsonWebKey): AsymmetricScheme | undefined {
  if (typeof jwk.d !== "string") return undefined;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "ed25519";
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ecdsa-p256-sha256";
  return undefined;
}

async function pemSigningKey(text: string, id: string | undefined): Promise<KeyFileResult> {
  if (id === undefined) return { ok: false, error: "a PEM key file carries no key id: pass --key-id" };
  const der = pkcs8FromPem(text);
  if (!der.ok) return { ok: false, error: der.error };
  // PKCS#8 names its algorithm; letting WebCrypto try each is simpler than reading the OID ourselves.
  for (const scheme of ["ed25519", "ecdsa-p256-sha256"] as const) {
    try {
      const privateKey = await importPrivateKey(scheme, { format: "pkcs8", bytes: der.value });
      return { ok: true, key: { id, scheme, privateKey } };
    } catch {
      // not this algorithm
    }
  }
  return { ok: false, error: "the PEM key is neither Ed25519 nor ECDSA P-256" };
}
