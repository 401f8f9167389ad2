// The public surface of lib/transport: import from here, not from the files behind it.
export type { LogFn, NatsAuth } from "./auth.ts";
export { type MessageBus, NatsBus } from "./bus.ts";
export { openReplayBucket } from "./kv.ts";
export {
  type KvBucketOptions,
  kvBucketState,
  NatsKvBucket,
  reportReplication,
} from "./kv-bucket.ts";
// Node-only connections (TCP, TLS files) are in ./node.ts, the package's second surface, so that the
// gateway's Worker bundle never meets node: modules.
export type { NatsTlsFiles } from "./node.ts";
export {
  natsAuthOptionSpecs,
  natsAuthSchema,
  natsConnectionChoice,
  natsOptionSpecs,
  natsTlsSchema,
} from "./options.ts";
export {
  type CapturedReply,
  queueReplySource,
  type ReplyDisposition,
  type ReplySource,
  streamReplySource,
} from "./reply-source.ts";
export { connectWebSocket } from "./websocket.ts";
