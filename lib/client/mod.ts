// The public surface of lib/client: import from here, not from the files behind it.
export { type NodeReply, openReply, openReplySync, type ReplyDigest } from "./replies.ts";
export {
  type ClientIdentity,
  federatedPackets,
  type SignedRequest,
  signDiscoveryRequest,
  signRpcRequest,
} from "./request.ts";
