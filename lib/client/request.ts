import type { Filter } from "../protocol/mod.ts";
import {
  encodeBase64Text,
  encodeRequest,
  encodeRpcRequest,
  type NewTransportOptions,
  newRequest,
  newRpcRequest,
  newSeedTransport,
  newTransportV1,
  type Request,
  type SeenByHop,
  type TransportDialect,
  type TransportPacket,
  transportData,
} from "../protocol/mod.ts";
import { type RequestSigner, signRequest } from "../security/mod.ts";

/** Who a request comes from: the signing certificate and the ids Choria puts in the envelope. */
export interface ClientIdentity {
  signer: RequestSigner;
  /** `choria=<name>`; a privileged signer may use any callerid (spec §2.1). */
  callerid: string;
  /** The sending host's identity, `senderid` in the envelope and `mc_sender` on the transport. */
  senderid: string;
}

export interface RpcCall {
  agent: string;
  action: string;
  data?: Record<string, unknown>;
  collective: string;
  filter?: Partial<Filter>;
  ttl?: number;
  requestId?: string;
}

export interface SignedRequest {
  request: Request;
  /** base64 of the secure request JSON: the transport's `data`, identical in every packet that carries it. */
  data: string;
}

// Choria clients chunk directed requests so that no transport lists more than this many targets (spec §6.1).
const DIRECTED_CHUNK_SIZE = 200;

/** Builds and signs an mcorpc request; the RPC JSON goes into `message` as-is, as Go clients send it. */
export function signRpcRequest(client: ClientIdentity, call: RpcCall): Promise<SignedRequest> {
  return sign(client, call, encodeRpcRequest(newRpcRequest(call.agent, call.action, call.data)));
}

/** Builds and signs a broadcast discovery ping: agent `discovery`, message base64("ping") (spec §8). */
export function signDiscoveryRequest(
  client: ClientIdentity,
  options: { collective: string; filter?: Partial<Filter>; ttl?: number; requestId?: string },
): Promise<SignedRequest> {
  return sign(client, { ...options, agent: "discovery" }, encodeBase64Text("ping"));
}

async function sign(
  client: ClientIdentity,
  options: { agent: string; collective: string; filter?: Partial<Filter>; ttl?: number; requestId?: string },
  payload: string,
): Promise<SignedRequest> {
  const request = newRequest({
    agent: options.agent,
    collective: options.collective,
    callerid: client.callerid,
    senderid: client.senderid,
    payload,
    ttl: options.ttl,
    filter: options.filter,
    requestId: options.requestId,
  });
  const secure = await signRequest(client.signer, encodeRequest(request));
  return { request, data: transportData(secure) };
}

export interface PacketOptions {
  replyTo: string;
  sender: string;
  /** The publisher's own hop, `[url, identity, url]`, when route recording is wanted. */
  hop?: SeenByHop;
  /** Wire dialect: `v1` (`choria:transport:1`, the default) or `seed` (the 2017 connector's). */
  dialect?: TransportDialect;
}

function packet(signed: SignedRequest, options: PacketOptions, target?: string[]): TransportPacket {
  const common: Omit<NewTransportOptions, "seenBy"> = {
    data: signed.data,
    sender: options.sender,
    replyTo: options.replyTo,
    ...(target ? { federation: { req: signed.request.envelope.requestid, target } } : {}),
  };
  const hop = options.hop;
  if (options.dialect === "seed")
    return newSeedTransport({ ...common, ...(hop ? { seenBy: [hop[0], hop[1]] } : {}) });
  return newTransportV1({ ...common, ...(hop ? { seenBy: [hop] } : {}) });
}

/** The unfederated transport: published as-is to every target subject. */
export function directPacket(signed: SignedRequest, options: PacketOptions): TransportPacket {
  return packet(signed, options);
}

/**
 * Federated transports for a set of targets, at most DIRECTED_CHUNK_SIZE targets each; every packet is
 * published once to `choria.federation.<cluster>.federation` for each federation cluster addressed.
 */
export function federatedPackets(
  signed: SignedRequest,
  targets: readonly string[],
  options: PacketOptions,
): TransportPacket[] {
  const packets: TransportPacket[] = [];
  for (let start = 0; start < targets.length; start += DIRECTED_CHUNK_SIZE) {
    packets.push(packet(signed, options, targets.slice(start, start + DIRECTED_CHUNK_SIZE)));
  }
  return packets;
}
