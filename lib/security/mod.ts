// The public surface of lib/security for Choria message security. Import from here, not from the files.

export { type Bytes, base64Bytes, utf8Bytes } from "./bytes.ts";
export type { TrustStore } from "./certs.ts";
export {
  type CallerIdMapping,
  callerIdForKey,
  loadSigner,
  type RequestSigner,
  replyHash,
  signRequest,
  verifyReplyHash,
  verifySecureRequest,
} from "./choria.ts";
export { constantTimeEqual } from "./compare.ts";
export { LruCache } from "./lru.ts";
export {
  encodePem,
  parsePem,
  pkcs8FromPem,
} from "./pem.ts";
export { sha256Digest } from "./sha256.ts";
