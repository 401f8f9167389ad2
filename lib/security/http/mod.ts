// The public surface of lib/security/http: who may call the gateway. Import from here, not from the files.
export { KEY_SCHEMES, type KeyScheme, SIGNATURE_SCHEMES, type SignatureScheme } from "./algorithms.ts";
export { type AuditEvent, auditLine } from "./audit.ts";
export {
  type AuthDeps,
  type AuthProblem,
  type AuthResult,
  authenticate,
  replayWindowSeconds,
} from "./authenticate.ts";
export { type HttpRequestParts, signatureBase } from "./base.ts";
export { checkContentDigest, contentDigest, type DigestAlgorithm } from "./digest.ts";
export {
  DENY_ALL,
  type GeneratedKey,
  generateHttpKey,
  type KeyFile,
  type KeyFileResult,
  signingKeyFromText,
} from "./keyfile.ts";
export {
  type GatewayKeyConfig,
  type GatewayKeysConfig,
  gatewayKeySchema,
  gatewayKeysSchema,
  KeyConfigError,
  KeyRegistry,
  type ResolvedKey,
} from "./keys.ts";
export {
  authorize,
  type CallbackIntent,
  FILTER_KINDS,
  type FilterKind,
  globMatch,
  type JobScope,
  mayReadJob,
  type Policy,
  type PolicyDecision,
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
export { parseDictionary, serializeDictionary } from "./structured.ts";
