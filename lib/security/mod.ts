// The public surface of lib/security for Choria message security. Import from here, not from the files.

export { type Bytes, base64Bytes, utf8Bytes } from "./bytes.ts";
export {
  type CertificateFailureReason,
  type CertificateResult,
  type ParsedCertificate,
  parseCertificate,
  TrustStore,
  type TrustStoreOptions,
  validityAt,
} from "./certs.ts";
export {
  type CallerIdMapping,
  type CallerIdResult,
  callerIdForKey,
  DEFAULT_ALLOWED_PATTERNS,
  DEFAULT_PRIVILEGED_PATTERNS,
  loadSigner,
  type RequestSigner,
  replyHash,
  sealReply,
  signRequest,
  type VerifyFailureReason,
  type VerifyPolicy,
  type VerifyResult,
  verifyReplyHash,
  verifySecureRequest,
} from "./choria.ts";
export { constantTimeEqual } from "./compare.ts";
export { LruCache } from "./lru.ts";
export {
  certificatesFromPem,
  encodePem,
  type PemBlock,
  type PemResult,
  parsePem,
  pkcs8FromPem,
  splitCertificateBundle,
  wrapPkcs1RsaKey,
} from "./pem.ts";
export { sha256Digest } from "./sha256.ts";
export { x509 } from "./x509.ts";
