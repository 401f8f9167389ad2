// Who is calling: an RFC 9421 signature (with an RFC 9530 Content-Digest over the raw body), or a bearer
// token for simple setups. Checks run cheapest first, except freshness, which waits for the signature so
// that a stale refusal can name its key; the replay store is only written for requests whose signature
// verified, so unauthenticated traffic cannot fill it.
//
// Bearer tokens are the weaker scheme and are documented as such: the token proves only that the caller
// knows it. Nothing binds it to the body, the URL or a moment in time, so a captured request can be
// replayed, or its body changed, until the token is rotated; a nonce header would not help, since nothing
// signs it. Use them only over TLS, between parties that already trust the path, with a narrow policy.
import { constantTimeEqual, utf8Bytes } from "../mod.ts";
import { isSignatureScheme, type SignatureScheme, type SyncVerifier, verifyBase } from "./algorithms.ts";
import { type HttpRequestParts, signatureBase } from "./base.ts";
import { checkContentDigest, digestBytes } from "./digest.ts";
import { type KeyRegistry, keyMaterial, keyValidityProblem, type ResolvedKey, toHex } from "./keys.ts";
import type { ReplayStore } from "./replay.ts";
import { type InnerList, isBytes, isInnerList, parseDictionary } from "./structured.ts";

/** Stable reason codes: callers and dashboards count by them, so a code is never renamed or reused. */
export type AuthProblem =
  | "missing_credentials"
  | "bad_signature"
  | "unknown_key"
  | "key_expired"
  | "stale"
  | "replay"
  | "digest_mismatch"
  | "missing_digest"
  | "unsupported_algorithm"
  | "malformed_signature"
  | "insufficient_coverage"
  | "body_too_large";

export type AuthResult =
  | { ok: true; key: ResolvedKey; created?: number; nonce?: string }
  | {
      ok: false;
      problem: AuthProblem;
      detail: string;
      status: 400 | 401 | 403 | 413;
      /** The key whose signature verified, for refusals that come after that: `stale` and `replay`. */
      key?: ResolvedKey;
    };

export interface AuthDeps {
  keys: KeyRegistry;
  replay: ReplayStore;
  now?: Date;
  /** Tolerated clock difference between caller and gateway, both ways. Default 30. */
  maxSkewSeconds?: number;
  /** How long after `created` a signature is accepted. Default 300. */
  maxAgeSeconds?: number;
  /** Bodies over this are refused before anything else is looked at. */
  maxBodyBytes?: number;
  /** Checks asymmetric signatures without WebCrypto's thread pool (Node); WebCrypto by default. */
  verify?: SyncVerifier;
}

/**
 * How long a replay claim can need to live: a request is accepted from `created - skew` until
 * `created + maxAge + skew`. A shared store's own expiry (a KV bucket's max_age) must be at least this.
 */
export function replayWindowSeconds(
  options: { maxAgeSeconds?: number; maxSkewSeconds?: number } = {},
): number {
  return (options.maxAgeSeconds ?? 300) + 2 * (options.maxSkewSeconds ?? 30);
}

const STATUS: Record<AuthProblem, 400 | 401 | 413> = {
  missing_credentials: 401,
  bad_signature: 401,
  unknown_key: 401,
  key_expired: 401,
  stale: 401,
  replay: 401,
  digest_mismatch: 401,
  missing_digest: 400,
  unsupported_algorithm: 400,
  malformed_signature: 400,
  insufficient_coverage: 400,
  body_too_large: 413,
};

const refuse = (problem: AuthProblem, detail: string, key?: ResolvedKey): AuthResult => ({
  ok: false,
  problem,
  detail,
  status: STATUS[problem],
  ...(key === undefined ? {} : { key }),
});

// Real signature headers are a few hundred bytes; the cap keeps parsing cost trivially bounded.
const MAX_FIELD_LENGTH = 8192;
const MAX_NONCE_LENGTH = 256;
const MAX_TOKEN_LENGTH = 4096;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * Decides who sent `request`, or why nobody acceptable did. A failing replay store rejects the promise
 * (fail closed); every other outcome is a value.
 */
export async function authenticate(request: HttpRequestParts, deps: AuthDeps): Promise<AuthResult> {
  if (deps.maxBodyBytes !== undefined && request.body.byteLength > deps.maxBodyBytes)
    return refuse("body_too_large", `the body is over the ${deps.maxBodyBytes} byte limit`);
  const headers = request.headers;
  if (headers.has("signature-input") || headers.has("signature")) return verifySignature(request, deps);
  const authorization = headers.get("authorization");
  if (authorization !== null) return verifyBearer(authorization, deps);
  return refuse(
    "missing_credentials",
    "send Signature-Input and Signature headers, or Authorization: Bearer",
  );
}

async function verifySignature(request: HttpRequestParts, deps: AuthDeps): Promise<AuthResult> {
  const inputField = request.headers.get("signature-input");
  const signatureField = request.headers.get("signature");
  if (inputField === null || signatureField === null)
    return refuse("malformed_signature", "Signature-Input and Signature must be sent together");
  if (inputField.length > MAX_FIELD_LENGTH || signatureField.length > MAX_FIELD_LENGTH)
    return refuse("malformed_signature", `signature fields are limited to ${MAX_FIELD_LENGTH} characters`);
  const inputs = parseDictionary(inputField);
  if (!inputs.ok) return refuse("malformed_signature", `Signature-Input: ${inputs.error}`);
  const signatures = parseDictionary(signatureField);
  if (!signatures.ok) return refuse("malformed_signature", `Signature: ${signatures.error}`);

  // A message may carry several signatures (one per hop, say); the first one made with a key this
  // gateway knows is the one that counts, and only that one is verified.
  let chosen: { label: string; input: InnerList; keyid: string } | undefined;
  let unknown = false;
  for (const [label, member] of inputs.value) {
    if (!isInnerList(member))
      return refuse("malformed_signature", `Signature-Input ${label} is not an inner list`);
    const keyid = member.params.get("keyid");
    if (typeof keyid !== "string") continue;
    if (deps.keys.get(keyid) === undefined) {
      unknown = true;
      continue;
    }
    chosen = { label, input: member, keyid };
    break;
  }
  if (chosen === undefined) {
    return unknown
      ? refuse("unknown_key", "the signature's keyid names no key known here")
      : refuse("malformed_signature", "no signature names its key with a keyid string parameter");
  }
  const { label, input } = chosen;
  const key = deps.keys.get(chosen.keyid)!;
  const signatureMember = signatures.value.get(label);
  if (signatureMember === undefined || isInnerList(signatureMember) || !isBytes(signatureMember.value))
    return refuse("malformed_signature", `Signature has no byte sequence for label ${label}`);
  const signature = signatureMember.value;

  const params = signatureParams(input);
  if (typeof params === "string") return refuse("malformed_signature", `${label}: ${params}`);

  const now = (deps.now ?? new Date()).getTime();
  const invalid = keyValidityProblem(key, now);
  if (invalid !== undefined) return refuse("key_expired", invalid);
  const material = keyMaterial(deps.keys, key.id)!;
  if (material.scheme === "bearer")
    return refuse("unsupported_algorithm", `key ${key.id} is a bearer token, not a signing key`);
  if (params.alg !== undefined) {
    if (!isSignatureScheme(params.alg))
      return refuse("unsupported_algorithm", "the signature's alg parameter names no supported algorithm");
    // The key decides the algorithm; a differing `alg` is an attempt at algorithm confusion or a mistake.
    if (params.alg !== material.scheme)
      return refuse(
        "unsupported_algorithm",
        `key ${key.id} is ${material.scheme}, the signature's alg parameter names another`,
      );
  }

  const coverage = coverageProblem(input, params, {
    hasBody: request.body.byteLength > 0,
    hasQuery: hasQuery(request.url),
  });
  if (coverage !== undefined) return refuse("insufficient_coverage", `${label}: ${coverage}`);

  const digestField = request.headers.get("content-digest");
  if (request.body.byteLength > 0 || digestField !== null) {
    const digest = await checkContentDigest(digestField, request.body);
    if (!digest.ok) return refuse(digest.problem, digest.detail);
  }

  const base = signatureBase(request, input);
  if (!base.ok) return refuse("malformed_signature", `${label}: ${base.error}`);
  const scheme = material.scheme as SignatureScheme;
  if (!(await verifyBase(scheme, material.cryptoKey, base.value, signature, deps.verify)))
    return refuse("bad_signature", `the signature ${label} does not verify with key ${key.id}`);

  // Freshness is judged once the signature holds, so that a stale refusal names a key that really
  // signed (the audit line says who sent an old request), never one an attacker merely wrote down.
  const freshness = freshnessWindow(params.created!, params.expires, now, deps);
  if (typeof freshness === "string") return refuse("stale", freshness, key);

  // Without a nonce the signed content itself identifies the request. Hashing the base rather than
  // using the signature bytes matters: an ECDSA signature (r, s) has a twin (r, n-s) that verifies too.
  const replayKey =
    params.nonce === undefined
      ? `${key.id}\nbase:${toHex(await digestBytes("sha-256", utf8Bytes(base.value)))}`
      : `${key.id}\nnonce:${params.nonce}`;
  if (!(await deps.replay.claim(replayKey, freshness.ttlSeconds)))
    return refuse(
      "replay",
      params.nonce === undefined ? "this signed request was seen before" : "this nonce was seen before",
      key,
    );
  return {
    ok: true,
    key,
    created: params.created,
    ...(params.nonce === undefined ? {} : { nonce: params.nonce }),
  };
}

interface SignatureParams {
  created?: number;
  expires?: number;
  alg?: string;
  nonce?: string;
}

function signatureParams(input: InnerList): SignatureParams | string {
  const params: SignatureParams = {};
  for (const name of ["created", "expires"] as const) {
    const value = input.params.get(name);
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0)
      return `${name} must be a non-negative integer`;
    params[name] = value;
  }
  for (const name of ["alg", "nonce"] as const) {
    const value = input.params.get(name);
    if (value === undefined) continue;
    if (typeof value !== "string") return `${name} must be a string`;
    params[name] = value;
  }
  if (params.nonce !== undefined && (params.nonce.length === 0 || params.nonce.length > MAX_NONCE_LENGTH))
    return `nonce must be 1 to ${MAX_NONCE_LENGTH} characters`;
  if (params.created !== undefined && params.expires !== undefined && params.expires <= params.created)
    return "expires must be after created";
  return params;
}

/**
 * What a signature must cover here: method, target, body digest, and when it was made. The target is
 * `@target-uri`, or `@authority` and `@path`, plus `@query` when the URL has one: a URL without a query
 * has nothing there to protect, and many signing libraries leave `@query` out by default. Adding a query
 * to such a request makes it one that must cover `@query`, so that is refused.
 */
function coverageProblem(
  input: InnerList,
  params: SignatureParams,
  request: { hasBody: boolean; hasQuery: boolean },
): string | undefined {
  const covered = new Set(input.items.map((item) => item.value));
  const missing: string[] = [];
  const missingTarget: string[] = [];
  if (!covered.has("@method")) missing.push("@method");
  if (!covered.has("@target-uri")) {
    const parts = request.hasQuery ? ["@authority", "@path", "@query"] : ["@authority", "@path"];
    for (const part of parts) if (!covered.has(part)) missingTarget.push(part);
    missing.push(...missingTarget);
  }
  if (request.hasBody && !covered.has("content-digest")) missing.push("content-digest");
  if (params.created === undefined) missing.push("the created parameter");
  if (missing.length === 0) return undefined;
  const instead =
    missingTarget.length === 0 ? "" : ` (or @target-uri in place of ${missingTarget.join(" and ")})`;
  return `must cover ${missing.join(", ")}${instead}`;
}

/** Whether the URL has a query; `?` alone is an empty query, and routes treat it as none. */
function hasQuery(url: string): boolean {
  try {
    return new URL(url).search !== "";
  } catch {
    // An unparseable URL cannot be signed over either; asking for @query is the safe answer.
    return true;
  }
}

/**
 * When the signature stops being acceptable, as a replay-claim TTL, or why it is not acceptable now.
 * Skew is granted both ways: a caller's clock may run ahead (created in our future) or behind.
 */
function freshnessWindow(
  created: number,
  expires: number | undefined,
  nowMs: number,
  deps: AuthDeps,
): { ttlSeconds: number } | string {
  const skew = deps.maxSkewSeconds ?? 30;
  const maxAge = deps.maxAgeSeconds ?? 300;
  const now = nowMs / 1000;
  if (created > now + skew)
    return `created is ${Math.round(created - now)}s in the future (skew allowed: ${skew}s)`;
  if (expires !== undefined && now > expires + skew)
    return `the signature expired ${Math.round(now - expires)}s ago`;
  if (now > created + maxAge + skew)
    return `created is ${Math.round(now - created)}s old (accepted: ${maxAge}s)`;
  const acceptedUntil = Math.min(created + maxAge, expires ?? Infinity) + skew;
  return { ttlSeconds: Math.max(1, Math.ceil(acceptedUntil - now)) };
}

async function verifyBearer(authorization: string, deps: AuthDeps): Promise<AuthResult> {
  if (authorization.length > MAX_TOKEN_LENGTH)
    return refuse("malformed_signature", `Authorization is limited to ${MAX_TOKEN_LENGTH} characters`);
  const match = BEARER.exec(authorization);
  if (!match) return refuse("missing_credentials", "Authorization must be Bearer <token>");
  const presented = await digestBytes("sha-256", utf8Bytes(match[1]!));
  // Every bearer key is compared, matched or not, so timing does not tell how many keys exist before it.
  let found: ResolvedKey | undefined;
  for (const key of deps.keys.bearerKeys()) {
    const material = keyMaterial(deps.keys, key.id);
    if (material?.scheme === "bearer" && constantTimeEqual(presented, material.tokenHash)) found = key;
  }
  if (found === undefined) return refuse("unknown_key", "the bearer token matches no key");
  const invalid = keyValidityProblem(found, (deps.now ?? new Date()).getTime());
  if (invalid !== undefined) return refuse("key_expired", invalid);
  return { ok: true, key: found };
}
