// RFC 9530 Content-Digest over the raw body bytes, exactly as received: parsing the JSON first and
// hashing a re-serialisation would accept bodies that differ from what was signed.
import { encodeBase64 } from "../../protocol/mod.ts";
import type { Bytes } from "../mod.ts";
import { constantTimeEqual, sha256Digest } from "../mod.ts";
import { isBytes, isInnerList, parseDictionary } from "./structured.ts";

const DIGEST_ALGORITHMS = { "sha-256": "SHA-256", "sha-512": "SHA-512" } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/** WebCrypto takes only ArrayBuffer-backed views; a view over a SharedArrayBuffer is copied. */
export function plainBytes(bytes: Uint8Array): Bytes {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Bytes) : new Uint8Array(bytes);
}

export async function digestBytes(algorithm: DigestAlgorithm, body: Uint8Array): Promise<Bytes> {
  if (algorithm === "sha-256") return sha256Digest(body);
  return new Uint8Array(await crypto.subtle.digest(DIGEST_ALGORITHMS[algorithm], plainBytes(body)));
}

/** The Content-Digest field value for `body`, e.g. `sha-256=:X48E9qOo...=:`. */
export async function contentDigest(
  body: Uint8Array,
  algorithm: DigestAlgorithm = "sha-256",
): Promise<string> {
  return `${algorithm}=:${encodeBase64(await digestBytes(algorithm, body))}:`;
}

export type DigestCheck =
  | { ok: true }
  | {
      ok: false;
      problem: "missing_digest" | "digest_mismatch" | "malformed_signature" | "unsupported_algorithm";
      detail: string;
    };

/**
 * Checks a Content-Digest field against the body. Every supported algorithm listed must match, and at
 * least one must be listed; algorithms this side does not know (md5, sha, ...) are ignored, as RFC 9530
 * tells recipients to do, so they can neither satisfy nor fail the check.
 */
export async function checkContentDigest(field: string | null, body: Uint8Array): Promise<DigestCheck> {
  if (field === null) return { ok: false, problem: "missing_digest", detail: "Content-Digest is missing" };
  const parsed = parseDictionary(field);
  if (!parsed.ok)
    return { ok: false, problem: "malformed_signature", detail: `Content-Digest: ${parsed.error}` };
  let checked = 0;
  for (const [name, member] of parsed.value) {
    if (!Object.hasOwn(DIGEST_ALGORITHMS, name)) continue;
    if (isInnerList(member) || !isBytes(member.value))
      return {
        ok: false,
        problem: "malformed_signature",
        detail: `Content-Digest ${name} is not a byte sequence`,
      };
    const actual = await digestBytes(name as DigestAlgorithm, body);
    if (!constantTimeEqual(actual, member.value))
      return {
        ok: false,
        problem: "digest_mismatch",
        detail: `Content-Digest ${name} does not match the body`,
      };
    checked++;
  }
  if (checked === 0)
    return {
      ok: false,
      problem: "unsupported_algorithm",
      detail: `Content-Digest needs one of ${Object.keys(DIGEST_ALGORITHMS).join(", ")}`,
    };
  return { ok: true };
}
