// The public surface of lib/security/http: who may call the gateway. Import from here, not from the files.
export { KEY_SCHEMES, type KeyScheme, type SyncVerifier } from "./algorithms.ts";
export { type AuditEvent, auditLine } from "./audit.ts";
export {
  type AuthDeps,
  type AuthProblem,
  type AuthResult,
  authenticate,
  replayWindowSeconds,
} from "./authenticate.ts";
export { type HttpRequestParts, signatureBase } from "./base.ts";
export { checkContentDigest, contentDigest } from "./digest.ts";
export {
  generateHttpKey,
  type KeyFile,
  signingKeyFromText,
} from "./keyfile.ts";
export {
  type GatewayKeyConfig,
  KeyConfigError,
  KeyRegistry,
} from "./keys.ts";
export {
  authorize,
  type CallbackIntent,
  globMatch,
  mayReadJob,
  type Policy,
  type PolicyIntent,
  policySchema,
} from "./policy.ts";
export {
  KvReplayStore,
  MemoryReplayStore,
  type ReplayBucket,
  type ReplayStore,
  ReplayStoreFull,
} from "./replay.ts";
export { type SigningKey, type SignRequestOptions, signHttpRequest } from "./sign.ts";
export { parseDictionary } from "./structured.ts";
