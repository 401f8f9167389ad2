import {
  type Decoded,
  decodeReply,
  decodeRpcReply,
  decodeTransport,
  fail,
  isPongPayload,
  ok,
  type RpcReply,
  type SecureReply,
  secureReplyOf,
  type TransportPacket,
} from "../protocol/mod.ts";
import { constantTimeEqual, verifyReplyHash } from "../security/mod.ts";

/** One node's answer, with every layer opened and checked. */
export interface NodeReply {
  sender: string;
  requestId: string;
  agent: string;
  /** Unix seconds, from the reply envelope. */
  time: number;
  /** The reply message text: RPC reply JSON, or `pong` for discovery. */
  payload: string;
  /**
   * The SHA-256 of the reply message as the secure reply carries it (base64), checked: what tells two
   * replies apart. In Choria v1 it is a hash, not a signature, so anyone can make one for any message.
   */
  hash: string;
  /** The parsed RPC reply, for every agent but discovery. */
  rpc?: RpcReply;
  transport: TransportPacket;
}

/**
 * Opens a reply as a Choria client does: transport, secure reply (whose hash must match the message
 * exactly as received), reply, and the RPC body. Never throws.
 */
export async function openReply(body: Uint8Array | string, maxBytes?: number): Promise<Decoded<NodeReply>> {
  const transport = decodeTransport(body, maxBytes === undefined ? {} : { maxBytes });
  if (!transport.ok) return transport;
  const secure = secureReplyOf(transport.value);
  if (!secure.ok) return secure;
  return openChecked(transport.value, secure.value, await verifyReplyHash(secure.value));
}

/**
 * The SHA-256 of UTF-8 text, as standard base64 with padding: what a secure reply's `hash` holds. Given to
 * openReplySync by a runtime that can hash without a round trip through WebCrypto's promises (Node's
 * `createHash`), for a process that opens thousands of replies a second.
 */
export type ReplyDigest = (text: string) => string;

/** openReply with a synchronous digest: the same checks, the same result, no await. */
export function openReplySync(
  body: Uint8Array | string,
  digest: ReplyDigest,
  maxBytes?: number,
): Decoded<NodeReply> {
  const transport = decodeTransport(body, maxBytes === undefined ? {} : { maxBytes });
  if (!transport.ok) return transport;
  const secure = secureReplyOf(transport.value);
  if (!secure.ok) return secure;
  const hashOk = constantTimeEqual(digest(secure.value.message), secure.value.hash);
  return openChecked(transport.value, secure.value, hashOk);
}

function openChecked(transport: TransportPacket, secure: SecureReply, hashOk: boolean): Decoded<NodeReply> {
  if (!hashOk) {
    return fail("secure_reply", "invalid_field", "hash", "does not match the SHA-256 of the message");
  }
  const reply = decodeReply(secure.message);
  if (!reply.ok) return reply;
  const { senderid, requestid, agent, time } = reply.value.envelope;
  const payload = reply.value.message;
  let rpc: RpcReply | undefined;
  if (agent === "discovery") {
    if (!isPongPayload(payload))
      return fail("reply", "invalid_field", "message", "discovery reply is not pong");
  } else {
    const decoded = decodeRpcReply(payload);
    if (!decoded.ok) return decoded;
    rpc = decoded.value;
  }
  // One object, with `rpc` only when there is one: a spread of a shared base was a copy per reply.
  const opened: NodeReply = {
    sender: senderid,
    requestId: requestid,
    agent,
    time,
    payload,
    hash: secure.hash,
    transport,
  };
  if (rpc !== undefined) opened.rpc = rpc;
  return ok(opened);
}
