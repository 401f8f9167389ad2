// The client side: signs a request the way `authenticate` wants it, for `choria-edge req` and the tests.
import { encodeBase64 } from "../../protocol/mod.ts";
import { type Bytes, base64Bytes, pkcs8FromPem } from "../mod.ts";
import { type AsymmetricScheme, importHmacKey, importPrivateKey, signBase } from "./algorithms.ts";
import { signatureBase } from "./base.ts";
import { contentDigest, type DigestAlgorithm } from "./digest.ts";
import { type InnerList, type Item, type Parameters, serializeDictionary } from "./structured.ts";

export type SigningKey =
  | {
      id: string;
      scheme: AsymmetricScheme;
      /** A WebCrypto private key, a private JWK, or PKCS#8 PEM text. */
      privateKey: CryptoKey | JsonWebKey | string;
    }
  | {
      id: string;
      scheme: "hmac-sha256" /** base64 of the key bytes, or the bytes */;
      secret: string | Uint8Array;
    }
  | { id: string; scheme: "bearer"; secret: string };

export interface SignRequestOptions {
  method: string;
  url: string;
  headers?: HeadersInit;
  body?: Uint8Array | string;
  key: SigningKey;
  /** Default: 16 random bytes, base64url. `null` signs without a nonce (replay is then keyed on the content). */
  nonce?: string | null;
  /** Epoch seconds; default now. */
  created?: number;
  /** Epoch seconds after which the gateway must refuse the signature. */
  expires?: number;
  label?: string;
  /**
   * Covered components; default `@method`, `@target-uri`, `content-digest` when there is a body, and
   * `content-type` when that header is set.
   */
  components?: string[];
  digest?: DigestAlgorithm;
  /** Put `alg` in the signature parameters (default true). */
  alg?: boolean;
}

/**
 * The headers to send: the given ones plus Content-Digest, Signature-Input and Signature (or, for a bearer
 * key, Authorization). Send the body bytes exactly as passed here: the digest is over them.
 */
export async function signHttpRequest(options: SignRequestOptions): Promise<Headers> {
  const headers = new Headers(options.headers);
  const { key } = options;
  if (key.scheme === "bearer") {
    headers.set("authorization", `Bearer ${key.secret}`);
    return headers;
  }
  const body =
    typeof options.body === "string"
      ? new TextEncoder().encode(options.body)
      : (options.body ?? new Uint8Array(0));
  if (body.byteLength > 0) headers.set("content-digest", await contentDigest(body, options.digest));
  const components = options.components ?? [
    "@method",
    "@target-uri",
    ...(body.byteLength > 0 ? ["content-digest"] : []),
    ...(headers.has("content-type") ? ["content-type"] : []),
  ];
  const params: Parameters = new Map();
  params.set("created", options.created ?? Math.floor(Date.now() / 1000));
  if (options.expires !== undefined) params.set("expires", options.expires);
  const nonce = options.nonce === undefined ? randomNonce() : options.nonce;
  if (nonce !== null) params.set("nonce", nonce);
  params.set("keyid", key.id);
  if (options.alg ?? true) params.set("alg", key.scheme);
  const input: InnerList = {
    items: components.map((name): Item => ({ value: name, params: new Map() })),
    params,
  };
  const base = signatureBase({ method: options.method, url: options.url, headers, body }, input);
  if (!base.ok) throw new Error(`cannot sign: ${base.error}`);
  const signature = await signBase(key.scheme, await signingCryptoKey(key), base.value);
  const label = options.label ?? "sig1";
  headers.set("signature-input", serializeDictionary(new Map([[label, input]])));
  headers.set("signature", serializeDictionary(new Map([[label, { value: signature, params: new Map() }]])));
  return headers;
}

async function signingCryptoKey(key: Exclude<SigningKey, { scheme: "bearer" }>): Promise<CryptoKey> {
  if (key.scheme === "hmac-sha256") {
    const bytes =
      typeof key.secret === "string" ? base64Bytes(key.secret) : (new Uint8Array(key.secret) as Bytes);
    if (bytes === undefined) throw new Error(`hmac key ${key.id}: the secret is not base64`);
    return importHmacKey(bytes);
  }
  const { privateKey } = key;
  if (privateKey instanceof CryptoKey) return privateKey;
  if (typeof privateKey !== "string") return importPrivateKey(key.scheme, { format: "jwk", jwk: privateKey });
  const der = pkcs8FromPem(privateKey);
  if (!der.ok) throw new Error(`key ${key.id}: ${der.error}`);
  return importPrivateKey(key.scheme, { format: "pkcs8", bytes: der.value });
}

function randomNonce(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** Unpadded base64url (RFC 4648 §5): safe in tokens, nonces and URLs. */
export function base64url(bytes: Uint8Array): string {
  return encodeBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
