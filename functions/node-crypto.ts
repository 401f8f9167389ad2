// node:crypto for the Node and Lambda gateways, on the calling thread: the Choria request signer and the
// HTTP signature verifier. lib/ stays runtime-neutral (the Worker runs it in workerd); these are handed in.
import { createPrivateKey, KeyObject, sign, verify } from "node:crypto";
import type { SyncVerifier } from "../lib/security/http/mod.ts";
import { loadSigner, type RequestSigner } from "../lib/security/mod.ts";

/**
 * The same signer as `loadSigner` (same checks at start-up, byte-identical signatures), signing on the
 * calling thread with a KeyObject parsed once: WebCrypto's sign hops to libuv's pool and back, which on a
 * busy gateway adds more latency than the signature's own CPU, and costs more CPU per call. It lives in
 * functions/ rather than in lib/security/node.ts, whose X.509 library the Node gateway and Lambda would
 * then load.
 */
export async function loadNodeSigner(material: { certPem: string; keyPem: string }): Promise<RequestSigner> {
  const checked = await loadSigner(material);
  const key = createPrivateKey(material.keyPem);
  return {
    certname: checked.certname,
    pubcert: checked.pubcert,
    sign: (message) => Promise.resolve(sign("sha256", Buffer.from(message, "utf8"), key).toString("base64")),
  };
}

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
export const verifySync: SyncVerifier = (scheme, key, data, signature) => {
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
