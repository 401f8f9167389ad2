// The Node-only surface of lib/security/http: signature checks through node:crypto on the calling thread.
import { KeyObject, verify } from "node:crypto";
import type { AsymmetricScheme, SyncVerifier } from "./algorithms.ts";

// Each caller's key is imported once, when the keys document is read; its node:crypto twin is made on its
// first use and lives as long as the CryptoKey does (a keys reload imports new ones).
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObjectOf(key: CryptoKey): KeyObject {
  let object = keyObjects.get(key);
  if (object === undefined) {
    object = KeyObject.from(key);
    keyObjects.set(key, object);
  }
  return object;
}

/** The same verdicts as WebCrypto's verify for the same key, without its thread pool round trip. */
export const verifySync: SyncVerifier = (
  scheme: AsymmetricScheme,
  key: CryptoKey,
  data: Uint8Array,
  signature: Uint8Array,
) => {
  const object = keyObjectOf(key);
  try {
    // ECDSA signatures are raw r||s in RFC 9421 (IEEE P1363), as WebCrypto takes them, not DER.
    return scheme === "ed25519"
      ? verify(null, data, object, signature)
      : verify("sha256", data, { key: object, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
};
