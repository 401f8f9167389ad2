import {
  certnameFromCallerId,
  encodeBase64,
  encodeSecureReply,
  encodeSecureRequest,
  type SecureReply,
  type SecureRequest,
} from "../protocol/mod.ts";
import { type Bytes, base64Bytes, utf8Bytes } from "./bytes.ts";
import type { CertificateFailureReason, ParsedCertificate, TrustStore } from "./certs.ts";
import { constantTimeEqual } from "./compare.ts";
import { signerCertificate } from "./der.ts";
import { pkcs8FromPem } from "./pem.ts";
import { sha256Digest } from "./sha256.ts";

// Choria v1 signs with RSASSA-PKCS1-v1_5 over SHA-256 (Go: rsa.SignPKCS1v15 with crypto.SHA256).
const RSA_PKCS1_SHA256: RsaHashedImportParams = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
/** Go (1.24+) refuses RSA keys below this size, so a smaller one could never be verified by a Go server. */
const MIN_RSA_BITS = 1024;

export interface RequestSigner {
  /** The certificate's name (common name, else first DNS SAN): what `choria=<certname>` callerids carry. */
  readonly certname: string;
  /** The certificate PEM exactly as given, sent as `pubcert`. */
  readonly pubcert: string;
  /** Standard padded base64 of the RSA PKCS#1 v1.5 SHA-256 signature over the UTF-8 bytes of `message`. */
  sign(message: string): Promise<string>;
}

/**
 * Imports a certificate and its RSA private key (PKCS#8 or PKCS#1 PEM) once, for signing many requests.
 * Throws when the material is unusable or the key does not belong to the certificate: that is a
 * configuration error to report at start-up, not per request.
 */
export async function loadSigner(material: { certPem: string; keyPem: string }): Promise<RequestSigner> {
  const cert = signerCertificate(material.certPem);
  if (!cert.ok) throw new Error(`signer certificate: ${cert.error}`);
  const certname = cert.value.names[0];
  if (certname === undefined) throw new Error("signer certificate has neither a common name nor a DNS name");
  const pkcs8 = pkcs8FromPem(material.keyPem);
  if (!pkcs8.ok) throw new Error(`signer key: ${pkcs8.error}`);
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey("pkcs8", pkcs8.value, RSA_PKCS1_SHA256, false, ["sign"]);
  } catch (err) {
    throw new Error(`signer key: not an RSA private key WebCrypto accepts: ${(err as Error).message}`);
  }
  const publicKey = await importRsaPublicKey(cert.value.spki, certname);
  if (!publicKey.ok) throw new Error(`signer certificate: ${publicKey.detail}`);
  const probe = utf8Bytes("choria-edge signer key check");
  const probeSignature = await crypto.subtle.sign(RSA_PKCS1_SHA256, privateKey, probe);
  if (!(await crypto.subtle.verify(RSA_PKCS1_SHA256, publicKey.key, probeSignature, probe))) {
    throw new Error(`signer key does not belong to the certificate for ${certname}`);
  }
  return {
    certname,
    pubcert: material.certPem,
    sign: async (message) =>
      encodeBase64(
        new Uint8Array(await crypto.subtle.sign(RSA_PKCS1_SHA256, privateKey, utf8Bytes(message))),
      ),
  };
}

/** Wraps the exact text of a `choria:request:1` in a signed `choria:secure:request:1` (JSON text). */
export async function signRequest(signer: RequestSigner, requestJson: string): Promise<string> {
  return encodeSecureRequest(requestJson, await signer.sign(requestJson), signer.pubcert);
}

type VerifyFailureReason =
  | "insecure"
  | "bad_callerid"
  | CertificateFailureReason
  | "callerid_mismatch"
  | "not_allowed"
  | "bad_signature";

export type VerifyResult =
  | { ok: true; certname: string; privileged: boolean }
  | { ok: false; reason: VerifyFailureReason; detail: string };

export interface VerifyPolicy {
  trust: TrustStore;
  /** Certificates with a name matching one of these may sign for any callerid. */
  privilegedPatterns?: readonly RegExp[];
  /** Certnames of ordinary callers must match one of these. */
  allowedPatterns?: readonly RegExp[];
  now?: Date;
}

const DEFAULT_PRIVILEGED_PATTERNS: readonly RegExp[] = [
  /\.privileged\.mcollective$/,
  /\.privileged\.choria$/,
];
const DEFAULT_ALLOWED_PATTERNS: readonly RegExp[] = [/\.mcollective$/, /\.choria$/];

/**
 * Decides whether a secure request may be acted on for `callerid` (the inner request's
 * `envelope.callerid`), in the order of spec §2.1: certname from callerid, chain to the CA, name or
 * privilege, allow list, then the signature over the exact `message` text received.
 */
export async function verifySecureRequest(
  secure: SecureRequest,
  callerid: string,
  policy: VerifyPolicy,
): Promise<VerifyResult> {
  if (secure.signature === "insecure" || secure.pubcert.startsWith("insecure")) {
    return refuse("insecure", "request is not signed (insecure signature or pubcert)");
  }
  const certname = certnameFromCallerId(callerid);
  if (certname === undefined)
    return refuse("bad_callerid", `no certname in callerid ${JSON.stringify(callerid)}`);

  const trusted = await policy.trust.verify(secure.pubcert, policy.now ?? new Date());
  if (!trusted.ok) return refuse(trusted.reason, trusted.detail);
  const cert = trusted.value;

  const privilegedPatterns = policy.privilegedPatterns ?? DEFAULT_PRIVILEGED_PATTERNS;
  const privileged = cert.names.some((name) => matchesAny(name, privilegedPatterns));
  if (!privileged) {
    if (!cert.names.includes(certname)) {
      return refuse(
        "callerid_mismatch",
        `certificate for ${cert.names.join(", ")} cannot act as ${certname}`,
      );
    }
    if (!matchesAny(certname, policy.allowedPatterns ?? DEFAULT_ALLOWED_PATTERNS)) {
      return refuse("not_allowed", `certname ${certname} is not on the allow list`);
    }
  }

  // base64Bytes skips CR/LF, which the legacy Ruby signer inserted every 60 characters.
  const signature = base64Bytes(secure.signature);
  if (signature === undefined) return refuse("bad_signature", "signature is not padded standard base64");
  const publicKey = await cachedPublicKey(cert);
  if (!publicKey.ok) return refuse("bad_certificate", publicKey.detail);
  const valid = await crypto.subtle.verify(
    RSA_PKCS1_SHA256,
    publicKey.key,
    signature,
    utf8Bytes(secure.message),
  );
  if (!valid) return refuse("bad_signature", `signature does not match the message and ${cert.subject}`);
  return { ok: true, certname, privileged };
}

function refuse(reason: VerifyFailureReason, detail: string): VerifyResult {
  return { ok: false, reason, detail };
}

// `search` ignores `lastIndex`, so patterns configured with the g or y flag still match every time.
function matchesAny(name: string, patterns: readonly RegExp[]): boolean {
  return patterns.some((pattern) => name.search(pattern) !== -1);
}

type KeyImport = { ok: true; key: CryptoKey } | { ok: false; detail: string };

// Keyed by the parsed certificate the TrustStore caches per pubcert text, so a key lives as long as the
// trust verdict for it and repeated callers skip the import.
const publicKeys = new WeakMap<ParsedCertificate, Promise<KeyImport>>();

function cachedPublicKey(cert: ParsedCertificate): Promise<KeyImport> {
  let key = publicKeys.get(cert);
  if (key === undefined) {
    key = importRsaPublicKey(cert.spki, cert.subject);
    publicKeys.set(cert, key);
  }
  return key;
}

/** `holder` names the certificate in the refusal: its subject, or the signer's certname. */
async function importRsaPublicKey(spki: Bytes, holder: string): Promise<KeyImport> {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("spki", spki, RSA_PKCS1_SHA256, false, ["verify"]);
  } catch {
    return { ok: false, detail: `${holder} does not hold an RSA public key; Choria v1 signs with RSA` };
  }
  const bits = (key.algorithm as RsaHashedKeyAlgorithm).modulusLength;
  if (bits < MIN_RSA_BITS) return { ok: false, detail: `${holder} has a ${bits}-bit RSA key` };
  return { ok: true, key };
}

/** Standard padded base64 of the raw SHA-256 digest of the reply text: the `hash` of a secure reply. */
export async function replyHash(replyJson: string): Promise<string> {
  return encodeBase64(await sha256Digest(utf8Bytes(replyJson)));
}

/** Wraps the exact text of a `choria:reply:1` in a `choria:secure:reply:1` (JSON text). */
export async function sealReply(replyJson: string): Promise<string> {
  return encodeSecureReply(replyJson, await replyHash(replyJson));
}

/** True when `hash` is the digest of the `message` text as received. */
export async function verifyReplyHash(secure: SecureReply): Promise<boolean> {
  return constantTimeEqual(await replyHash(secure.message), secure.hash);
}

export interface CallerIdMapping {
  /** The callerid type before `=`; Choria uses `choria`. */
  type?: string;
  /** Appended to the key id to form the certname; `.mcollective` puts it on the default allow list. */
  suffix?: string;
}

export type CallerIdResult = { ok: true; callerid: string; certname: string } | { ok: false; detail: string };

const CALLER_TYPE = /^[a-z]+$/;
const CERTNAME = /^[\w.-]+$/;

/**
 * The callerid the gateway claims for an HTTP caller authenticated with `keyId`:
 * `choria=<keyId>.mcollective` by default. Refuses ids that would not survive Go's callerid parsing
 * intact, and names that look privileged, so a key id can never pass itself off as the gateway.
 */
export function callerIdForKey(keyId: string, mapping: CallerIdMapping = {}): CallerIdResult {
  if (keyId === "") return { ok: false, detail: "key id is empty" };
  const type = mapping.type ?? "choria";
  const certname = `${keyId}${mapping.suffix ?? ".mcollective"}`;
  if (!CALLER_TYPE.test(type))
    return { ok: false, detail: `callerid type ${JSON.stringify(type)} is not [a-z]+` };
  if (!CERTNAME.test(certname)) {
    return { ok: false, detail: `certname ${JSON.stringify(certname)} must match [\\w.-]+` };
  }
  if (matchesAny(certname, DEFAULT_PRIVILEGED_PATTERNS)) {
    return { ok: false, detail: `certname ${certname} would look privileged` };
  }
  return { ok: true, callerid: `${type}=${certname}`, certname };
}
