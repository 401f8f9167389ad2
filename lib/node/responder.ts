import { type Clock, realClock } from "../clock/mod.ts";
import type { Decoded, SecureRequest } from "../protocol/mod.ts";
import {
  broadcastSubject,
  checkRequestTime,
  decodeRequest,
  decodeRpcRequest,
  decodeTransport,
  encodeReply,
  encodeRpcReply,
  encodeSecureReply,
  encodeTransport,
  isPingPayload,
  isV1,
  matchFilter,
  nodeSubject,
  PONG_PAYLOAD,
  type Request,
  type RpcRequest,
  requestPayloadText,
  type SeedTransport,
  StatusCode,
  secureRequestOf,
  subjectProblem,
  type TransportPacket,
  type TransportV1,
  transportData,
} from "../protocol/mod.ts";
import type { TrustStore } from "../security/mod.ts";
import { LruCache, replyHash, verifySecureRequest } from "../security/mod.ts";
import { type ActionContext, type Agent, builtinAgents, dispatch } from "./agents.ts";
import type { NodeIdentity } from "./fleet.ts";

export interface NodeHostOptions {
  fleet: readonly NodeIdentity[];
  /** The CA bundle that request certificates must chain to. */
  trust: TrustStore;
  privilegedPatterns?: readonly RegExp[];
  allowedPatterns?: readonly RegExp[];
  agents?: readonly Agent[];
  /** Largest request body accepted, in bytes. */
  maxBytes?: number;
  /** Replies handed out together before the rest are made (see `handle`); 256 by default. */
  replyBatch?: number;
  /** What a runtime does faster than the portable code (see HostCodec); the portable code otherwise. */
  codec?: HostCodec;
  /** The time requests are judged and replies stamped by; the system's by default. */
  clock?: Pick<Clock, "now">;
}

/**
 * The per-message byte work of a host, for a runtime with native forms of it: a Node host passes
 * lib/node/node.ts's (node:crypto, Buffer), each several to twenty times the portable code's speed, for
 * the thousands of replies a big fleet makes per request.
 */
export interface HostCodec {
  /** The base64 SHA-256 of a reply's text. */
  digest(text: string): string;
  /** Byte equality. */
  sameBytes(a: Uint8Array, b: Uint8Array): boolean;
  /** Standard padded base64 of the UTF-8 of a secure reply's text: the transport's data. */
  transportData(secureJson: string): string;
}

export interface OutgoingReply {
  subject: string;
  body: string;
}

/** Why a request was dropped without any reply; stable codes, counted and logged by the caller. */
export type DropReason =
  | "malformed_transport"
  /** A layer nested deeper than MAX_JSON_DEPTH, refused on its bytes before it is walked. */
  | "too_deep"
  | "unsupported_protocol"
  | "malformed_secure_request"
  | "malformed_request"
  | "no_reply_to"
  /** A reply-to the node must not publish to: over-long, too many tokens, wildcards, whitespace, `$`. */
  | "bad_reply_to"
  | "not_for_this_host"
  | "expired"
  | "unauthorised";

type Dropped = { ok: false; reason: DropReason; detail: string };

export type HandleResult =
  | { ok: true; replies: OutgoingReply[]; requestId: string; callerid: string }
  | Dropped;

const DEFAULT_MAX_BYTES = 1024 * 1024;
const REPLY_BATCH = 256;

function ioTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * One process hosting many Choria member nodes. A message is decoded and its signature verified once,
 * then every hosted identity it addresses applies the filter and answers on its own, as separate Choria
 * servers would: one reply each, signed off with the reply hash, echoing the federation header.
 */
export class NodeHost {
  readonly fleet: readonly NodeIdentity[];
  readonly #options: NodeHostOptions;
  readonly #now: () => number;
  readonly #agents: ReadonlyMap<string, Agent>;
  /** Identities addressed by each subject this host listens on. */
  readonly #audience = new Map<string, NodeIdentity[]>();
  readonly #verdicts = new ShortMemo<Promise<Awaited<ReturnType<typeof verifySecureRequest>>>>();
  readonly #opened = new ShortMemo<Opened | Dropped>();
  /**
   * The last few distinct messages' bytes and what they opened to, newest first: each broker's directed
   * copies arrive one after another, interleaved with the other brokers'. Comparing bytes costs a fraction
   * of decoding them to a text key and hashing it.
   */
  #recent: { bytes: Uint8Array; opened: Opened | Dropped; at: number }[] = [];

  /** Signature checks made: one per distinct signed request, however many hosted nodes it reaches. */
  get verifications(): number {
    return this.#verdicts.made;
  }

  /** Requests decoded: one per distinct message body, however many node subjects it arrived on. */
  get decodes(): number {
    return this.#opened.made;
  }

  constructor(options: NodeHostOptions) {
    this.#options = options;
    const clock = options.clock ?? realClock;
    this.#now = () => clock.now();
    this.fleet = options.fleet;
    this.#agents = new Map((options.agents ?? builtinAgents).map((agent) => [agent.name, agent]));
    for (const node of options.fleet) {
      this.#listen(nodeSubject(node.collective, node.identity), node);
      for (const agent of node.agents) this.#listen(broadcastSubject(node.collective, agent), node);
    }
  }

  /** Every subject the host must subscribe to (broadcast subjects of its agents, one node subject each). */
  get subjects(): string[] {
    return [...this.#audience.keys()];
  }

  #listen(subject: string, node: NodeIdentity) {
    const nodes = this.#audience.get(subject);
    if (nodes === undefined) this.#audience.set(subject, [node]);
    else nodes.push(node);
  }

  /**
   * Handles one message received on `subject`. `connectedUrl` is the NATS server the host is connected
   * to, recorded in seen-by hops. Never throws: anything unusable is a drop with a reason.
   */
  async handle(
    subject: string,
    body: Uint8Array | string,
    connectedUrl: string,
    onReplies?: (batch: OutgoingReply[]) => void,
  ): Promise<HandleResult> {
    const audience = this.#audience.get(subject);
    if (audience === undefined) return drop("not_for_this_host", `no hosted node listens on ${subject}`);

    const opened = this.#openMemo(body);
    if (!opened.ok) return opened;
    const { packet, replyTo, secure, request } = opened;
    const { collective, agent, callerid } = request.envelope;
    if (audience[0]!.collective !== collective) {
      return drop("not_for_this_host", `request for collective ${collective} arrived on ${subject}`);
    }
    const fresh = checkRequestTime(request, Math.floor(this.#now() / 1000));
    if (!fresh.ok) return drop("expired", fresh.error.message);

    // Held on the opened request too, so that its other copies skip building and hashing the key.
    opened.verdict ??= this.#verdicts.get(verdictKey(secure), () =>
      verifySecureRequest(secure, callerid, {
        trust: this.#options.trust,
        privilegedPatterns: this.#options.privilegedPatterns,
        allowedPatterns: this.#options.allowedPatterns,
      }),
    );
    const verdict = await opened.verdict;
    if (!verdict.ok) return drop("unauthorised", `${verdict.reason}: ${verdict.detail}`);

    const now = Math.floor(this.#now() / 1000);
    const replies: OutgoingReply[] = [];
    const codec = this.#options.codec;
    for (const node of audience) {
      if (!node.agents.includes(agent) || !matchFilter(request.envelope.filter, node)) continue;
      const answer = await this.#answer(node, opened, now);
      if (answer === undefined) continue;
      const sealed = encodeSecureReply(answer, codec ? codec.digest(answer) : await replyHash(answer));
      if (opened.template?.url !== connectedUrl) opened.template = replyTemplate(packet, connectedUrl);
      replies.push({
        subject: replyTo,
        body: fillReply(opened.template, node.identity, (codec?.transportData ?? transportData)(sealed)),
      });
      // A broadcast to thousands of hosted nodes: the first replies go out (a turn of the event loop
      // lets the socket take them) while the rest are made, rather than all at the end.
      if (onReplies !== undefined && replies.length >= (this.#options.replyBatch ?? REPLY_BATCH)) {
        onReplies(replies.splice(0));
        await ioTurn();
      }
    }
    return { ok: true, replies, requestId: request.envelope.requestid, callerid };
  }

  /** #open's result for these bytes, made once for identical bytes arriving within a few seconds. */
  #openMemo(body: Uint8Array | string): Opened | Dropped {
    const now = this.#now();
    if (typeof body !== "string") {
      const same = this.#options.codec?.sameBytes ?? sameBytes;
      for (const seen of this.#recent)
        if (now - seen.at < MEMO_TTL_MS && same(seen.bytes, body)) return seen.opened;
    }
    const key = memoKey(body);
    const opened = key === undefined ? this.#open(body) : this.#opened.get(key, () => this.#open(body));
    // Only bytes that went through the memo's checks (small, valid UTF-8) may be compared byte for byte;
    // kept as a copy, as a transport could reuse its read buffer for the next message.
    if (typeof body !== "string" && key !== undefined) {
      this.#recent.unshift({ bytes: body.slice(), opened, at: now });
      this.#recent.length = Math.min(this.#recent.length, RECENT_BODIES);
    }
    return opened;
  }

  /** The layers of a request as far as its bytes alone decide: the same for every node it reaches. */
  #open(body: Uint8Array | string): Opened | Dropped {
    const transport = decodeTransport(body, { maxBytes: this.#options.maxBytes ?? DEFAULT_MAX_BYTES });
    if (!transport.ok) return dropFor(transport, "malformed_transport");
    const packet = transport.value;
    const replyTo = packet.headers["reply-to"];
    if (replyTo === undefined) return drop("no_reply_to", "request has no reply-to header");
    // Checked before anything else is done for the request: one bad reply-to must cost nothing but itself.
    const replyToProblem = subjectProblem(replyTo);
    if (replyToProblem !== undefined)
      return drop("bad_reply_to", `reply-to ${shortQuote(replyTo)}: ${replyToProblem}`);
    const secure = secureRequestOf(packet);
    if (!secure.ok) return dropFor(secure, "malformed_secure_request");
    const decoded = decodeRequest(secure.value.message);
    if (!decoded.ok) return dropFor(decoded, "malformed_request");
    return {
      ok: true,
      packet,
      replyTo,
      secure: secure.value,
      request: decoded.value,
      payload: requestPayloadText(decoded.value),
    };
  }

  /** The reply message text for one node, or undefined when that node stays silent. */
  async #answer(node: NodeIdentity, opened: Opened, now: number): Promise<string | undefined> {
    const { request, payload } = opened;
    if (request.envelope.agent === "discovery") {
      // The Go discovery agent answers only a ping; anything else gets no reply at all.
      return isPingPayload(payload) ? replyText(request, node.identity, PONG_PAYLOAD, now) : undefined;
    }
    // The same payload for every node: parsed once, and agents only read it.
    opened.rpc ??= decodeRpcRequest(payload);
    const rpc = opened.rpc;
    const outcome = rpc.ok
      ? await dispatch(this.#agents, request.envelope.agent, rpc.value.action, rpc.value.data, {
          node,
          requestId: request.envelope.requestid,
          callerId: request.envelope.callerid,
          now,
        } satisfies ActionContext)
      : {
          statuscode: StatusCode.InvalidData,
          statusmsg: `could not parse the RPC request: ${rpc.error.message}`,
          data: {},
        };
    const action = rpc.ok ? rpc.value.action : "unknown";
    const body = encodeRpcReply({ action, ...outcome });
    return replyText(request, node.identity, body, now);
  }
}

// A directed request reaches a host once per hosted node it names (one node subject each), and a broker
// sends the same bytes to every node subject of a federated packet: those bytes are decoded once, and
// their signature checked once, for all of those nodes, which get the verdict each would have reached
// alone. Only identical bytes share anything, and only for a few seconds, so that a certificate that
// expires in the meantime is refused as it would be by a node that checked it then; freshness and the
// collective are still checked for every copy.
const MEMO_TTL_MS = 5_000;
const MEMO_CAPACITY = 256;
const RECENT_BODIES = 4;
const OPENED_MAX_BYTES = 64 * 1024;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

interface Opened {
  ok: true;
  packet: TransportPacket;
  replyTo: string;
  secure: SecureRequest;
  request: Request;
  payload: string;
  /** Filled by the first copy that gets this far; later copies take them as they are. */
  verdict?: Promise<Awaited<ReturnType<typeof verifySecureRequest>>>;
  rpc?: Decoded<RpcRequest>;
  template?: ReplyTemplate;
}

// Control characters JSON escapes, so that the holes show as these six characters in the template.
const IDENTITY_HOLE = "\u0001";
const DATA_HOLE = "\u0002";
const HOLE_TEXT = { identity: "\\u0001", data: "\\u0002" } as const;

/**
 * A request's reply transport as text, with the node's identity and the data as holes: what is left to
 * do per node is filling them, not serialising the echoed headers again. Holes are marked by escaped
 * control characters; when the request's own headers hold one too, there is no template and each reply
 * is serialised whole.
 */
export interface ReplyTemplate {
  url: string;
  /** Literal text and holes alternating, starting and ending with text. */
  pieces?: string[];
  request: TransportPacket;
}

export function replyTemplate(request: TransportPacket, connectedUrl: string): ReplyTemplate {
  const text = encodeTransport(replyPacket(request, IDENTITY_HOLE, DATA_HOLE, connectedUrl));
  const pieces = text.split(/(\\u000[12])/);
  const holes = pieces.filter((_, i) => i % 2 === 1);
  const count = (hole: string) => holes.filter((h) => h === hole).length;
  // mc_sender and the node's seen-by entry carry its identity, in both dialects.
  const usable = count(HOLE_TEXT.identity) === 2 && count(HOLE_TEXT.data) === 1;
  return { url: connectedUrl, request, ...(usable ? { pieces } : {}) };
}

/** The reply transport text for one node: equal to serialising its reply packet (a test holds it so). */
export function fillReply(template: ReplyTemplate, identity: string, data: string): string {
  const { pieces } = template;
  if (pieces === undefined)
    return encodeTransport(replyPacket(template.request, identity, data, template.url));
  // Base64 needs no escaping; the identity is escaped as JSON.stringify would.
  const escaped = JSON.stringify(identity).slice(1, -1);
  let text = pieces[0] ?? "";
  for (let i = 1; i < pieces.length; i += 2)
    text += (pieces[i] === HOLE_TEXT.data ? data : escaped) + (pieces[i + 1] ?? "");
  return text;
}

/**
 * The reply message text. newReply's schema check is left out: every field is valid by construction (the
 * request's were checked when it was opened, identities when the fleet was made, payloads are never
 * empty), and at 10,000 replies a request it was the host's largest cost after hashing.
 */
function replyText(request: Request, senderid: string, message: string, time: number): string {
  const { requestid, agent } = request.envelope;
  return encodeReply({ protocol: "choria:reply:1", message, envelope: { requestid, senderid, agent, time } });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

class ShortMemo<V> {
  readonly #entries = new LruCache<string, { at: number; value: V }>(MEMO_CAPACITY);
  /** Values made rather than found. */
  made = 0;

  /** The value for `key` made in the last few seconds, else `make()`'s. */
  get(key: string, make: () => V): V {
    const now = Date.now();
    const known = this.#entries.get(key);
    if (known !== undefined && now - known.at < MEMO_TTL_MS) return known.value;
    this.made++;
    const value = make();
    this.#entries.set(key, { at: now, value });
    return value;
  }
}

/** The bytes as text when they may be memoised: small, and valid UTF-8 (so that no two share a text). */
function memoKey(body: Uint8Array | string): string | undefined {
  if (typeof body === "string") return body.length <= OPENED_MAX_BYTES ? body : undefined;
  if (body.length > OPENED_MAX_BYTES) return undefined;
  try {
    return strictUtf8.decode(body);
  } catch {
    return undefined;
  }
}

/** Lengths first, so that no two different requests make the same key. */
function verdictKey(secure: SecureRequest): string {
  return `${secure.signature.length}:${secure.pubcert.length}:${secure.signature}${secure.pubcert}${secure.message}`;
}

/**
 * The reply transport, in the request's dialect. A federated request's federation header and seen-by hops
 * come back exactly as received (spec §6.3): that is what lets stateless brokers route the reply.
 */
function replyPacket(
  request: TransportPacket,
  identity: string,
  data: string,
  connectedUrl: string,
): TransportPacket {
  if (isV1(request)) {
    const federation = request.headers.federation;
    const headers: TransportV1["headers"] = { mc_sender: identity };
    const hops = federation ? [...(request.headers["seen-by"] ?? [])] : [];
    hops.push([connectedUrl, identity, connectedUrl]);
    headers["seen-by"] = hops;
    if (federation) headers.federation = federation;
    return { protocol: request.protocol, data, headers };
  }
  const seed = request as SeedTransport;
  const federation = seed.headers.federation;
  const headers: SeedTransport["headers"] = { mc_sender: identity };
  headers["seen-by"] = [...(federation ? (seed.headers["seen-by"] ?? []) : []), identity];
  if (federation) headers.federation = federation;
  return { data, headers };
}

function drop(reason: DropReason, detail: string): Dropped {
  return { ok: false, reason, detail };
}

function dropFor(failed: Decoded<unknown> & { ok: false }, otherwise: DropReason): Dropped {
  const { code } = failed.error;
  const reason =
    code === "unsupported_protocol" ? "unsupported_protocol" : code === "too_deep" ? "too_deep" : otherwise;
  return drop(reason, failed.error.message);
}

// Details end up in logs: keep what the sender chose short.
function shortQuote(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
}
