// The public surface of lib/transport: import from here, not from the files behind it.
export type { LogFn, NatsAuth } from "./auth.ts";
export { type MessageBus, NatsBus } from "./bus.ts";
export { openReplayBucket } from "./kv.ts";
export {
  type KvBucketOptions,
  NatsKvBucket,
  reportReplication,
} from "./kv-bucket.ts";
export { connectNats, type NatsTlsFiles } from "./node.ts";
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
