// The public surface of lib/results: import from here, not from the files behind it.
export type { DoneReason } from "./collect-replies.ts";
export { type Limit, type LimitMethod, parseLimit, uniqueTargets } from "./limit.ts";
export { type ReplyRouterStats, replyRouter } from "./reply-router.ts";
export {
  PublishRefused,
  publishRpc,
  type RpcHooks,
  type RpcPlan,
  resolveTargets,
  sendRpc,
  type Targets,
} from "./rpc.ts";
export { chooseFormat, encodeEvent, MEDIA_TYPES, type StreamEvent, summaryEvent } from "./stream.ts";
export type { DiscoveryEnd, DiscoveryOutcome, ReplyEntry, RpcResult } from "./summary.ts";
