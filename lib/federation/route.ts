import type { ProtocolError } from "../protocol/mod.ts";
import {
  checkTransport,
  checkTransportHeaders,
  collectiveSubject,
  depthDetail,
  dialectOf,
  jsonDepthExceeds,
  MAX_JSON_DEPTH,
  parseJson,
  parseSubject,
  type SeenByHop,
  type TransportDialect,
  type TransportPacket,
} from "../protocol/mod.ts";
import type { BrokerConfig, BrokerSide } from "./config.ts";
import {
  isKey,
  type Member,
  type StringSpan,
  spanEquals,
  stringMember,
  topLevelMembers,
} from "./packet-bytes.ts";
import type { RefusalReason } from "./refusals.ts";
import { replyCollective, targetCollective } from "./subject-shapes.ts";

export interface RouteInput {
  /** The side the packet arrived on: requests come from the federation, replies from the collective. */
  side: BrokerSide;
  body: Uint8Array | string;
}

export interface RouteContext {
  /** Redacted URL of the NATS server the packet was received from. */
  ingestUrl: string;
  /** Redacted URL of the NATS server the packet will be published to. */
  egestUrl: string;
  /** Worker index shown in the seen-by stage names (`choria_nats_ingest:<worker>`). */
  worker: number;
}

export type Routed = {
  ok: true;
  side: BrokerSide;
  /** Subjects to publish to, on the other side; never empty, no duplicates. */
  targets: string[];
  /** The rewritten packet, serialised once to be published identically to every target. Its `data`
   * is a copy of the received bytes: the broker never decodes or re-encodes what it carries. */
  body: Uint8Array;
  requestId: string;
  dialect: TransportDialect;
};

type Refused = {
  ok: false;
  side: BrokerSide;
  reason: RefusalReason;
  detail: string;
  requestId?: string;
};

export type RouteResult = Routed | Refused;

type Federation = NonNullable<TransportPacket["headers"]["federation"]>;
type Headers = TransportPacket["headers"];

interface Compiled {
  cluster: string;
  identity: string;
  /** How the seed dialect names this broker in seen-by (the 2017 Ruby broker's form). */
  seedName: string;
  collectiveSubject: string;
  collectives: ReadonlySet<string>;
  /** Collectives whose reply subjects requests may name as reply-to. */
  replyCollectives: ReadonlySet<string>;
  patterns: string[][];
  maxHops: number;
  maxBytes: number;
  maxTargets: number;
  recordRoute: boolean;
}

// route() is called per message with the same config object; compile its allow-list once.
const compiledConfigs = new WeakMap<BrokerConfig, Compiled>();

function compile(config: BrokerConfig): Compiled {
  let compiled = compiledConfigs.get(config);
  if (compiled === undefined) {
    compiled = {
      cluster: config.cluster,
      identity: config.identity,
      seedName: `fedbroker_${config.cluster}_${config.instance}`,
      collectiveSubject: collectiveSubject(config.cluster),
      collectives: new Set(config.collectives),
      replyCollectives: new Set(config.replyCollectives ?? config.collectives),
      patterns: config.allowSubjects.map((p) => p.split(".")),
      maxHops: config.maxHops,
      maxBytes: config.maxBytes,
      maxTargets: config.maxTargets,
      recordRoute: config.recordRoute,
    };
    compiledConfigs.set(config, compiled);
  }
  return compiled;
}

/**
 * Decides what the broker does with one packet: where it goes and the exact bytes to send, or why it is
 * refused. Requests (federation side) fan out to their `federation.target` subjects with `reply-to`
 * pointing back at this cluster; replies (collective side) go to `federation.reply-to` with the
 * federation header removed. One seen-by hop is appended either way. Pure; never throws on bad input.
 */
export function route(input: RouteInput, config: BrokerConfig, ctx: RouteContext): RouteResult {
  const c = compile(config);
  const { side } = input;
  const bytes = typeof input.body === "string" ? encoder.encode(input.body) : input.body;
  if (bytes.byteLength > c.maxBytes)
    return refused(side, "too_large", `${bytes.byteLength} bytes is over the ${c.maxBytes} byte limit`);
  const read = readPacket(bytes, c);
  if (!read.ok) return refused(side, read.reason, read.detail);
  const { dialect, headers } = read;
  const federation = headers.federation;
  if (federation === undefined) return refused(side, "not_federated", "the packet has no federation header");
  const requestId = federation.req ?? "";

  const ownHops = countOwnHops(headers, dialect, c);
  if (side === "federation") {
    if (federation["reply-to"] !== undefined)
      return refused(
        side,
        "reply_on_federation_side",
        "federation.reply-to is set: a broker already handled it",
        requestId,
      );
    const targets = federation.target ?? [];
    if (targets.length === 0) return refused(side, "no_targets", "federation.target is empty", requestId);
    const replyTo = headers["reply-to"];
    if (replyTo === undefined) return refused(side, "no_reply_to", "a request needs reply-to", requestId);
    const replyProblem = replyToProblem("reply-to", replyTo, c);
    if (replyProblem !== undefined) return refused(side, replyProblem.reason, replyProblem.detail, requestId);
    if (ownHops > 0) return refused(side, "loop", `${ownName(dialect, c)} is already in seen-by`, requestId);
    const unique = targets.length === 1 ? targets : [...new Set(targets)];
    for (const target of unique) {
      const problem = targetProblem(target, c);
      if (problem !== undefined) return refused(side, problem.reason, problem.detail, requestId);
    }
    const rewritten: Federation = withoutTarget(federation, replyTo);
    const out = rewriteHeaders(headers, {
      replyTo: c.collectiveSubject,
      seenBy: appendHop(headers, dialect, c, ctx, "choria_request_transformer"),
      federation: rewritten,
    });
    return {
      ok: true,
      side,
      targets: unique,
      body: serialise(read, out, bytes),
      requestId,
      dialect,
    };
  }

  if (federation.target !== undefined && federation.target.length > 0)
    return refused(
      side,
      "request_on_collective_side",
      "federation.target is set on the collective side",
      requestId,
    );
  const replyTo = federation["reply-to"];
  if (replyTo === undefined)
    return refused(side, "no_reply_to", "a reply needs federation.reply-to", requestId);
  const replyProblem = replyToProblem("federation.reply-to", replyTo, c);
  if (replyProblem !== undefined) return refused(side, replyProblem.reason, replyProblem.detail, requestId);
  // A reply carries the hop its request made through this broker; a second one means it came round again.
  if (ownHops > 1)
    return refused(side, "loop", `${ownName(dialect, c)} is already in seen-by twice`, requestId);
  const out = rewriteHeaders(headers, {
    replyTo: headers["reply-to"],
    seenBy: appendHop(headers, dialect, c, ctx, "choria_reply_transformer"),
    federation: undefined,
  });
  return {
    ok: true,
    side,
    targets: [replyTo],
    body: serialise(read, out, bytes),
    requestId,
    dialect,
  };
}

function refused(side: BrokerSide, reason: RefusalReason, detail: string, requestId?: string): Refused {
  return requestId === undefined
    ? { ok: false, side, reason, detail }
    : { ok: false, side, reason, detail, requestId };
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const DATA_KEY = encoder.encode("data");
const HEADERS_KEY = encoder.encode("headers");
const PROTOCOL_KEY = encoder.encode("protocol");
const V1_PROTOCOL = encoder.encode('"choria:transport:1"');

type Read =
  | {
      ok: true;
      dialect: TransportDialect;
      headers: Headers;
      data: StringSpan;
      /** The packet's unknown top-level members, serialised, each after a comma. */
      unknown: string;
    }
  | { ok: false; reason: RefusalReason; detail: string };

/**
 * Reads the packet. What every Choria sender writes (`protocol`, plain base64 `data`, `headers`, nothing
 * else, each once) is read by parsing the headers member alone: only they change on the way out, the rest
 * is copied. Any other layout, or headers that are not JSON, is parsed whole as it always was, so that the
 * refusal keeps its words and unknown members are written out as before.
 */
function readPacket(bytes: Uint8Array, c: Compiled): Read {
  const members = topLevelMembers(bytes);
  const layout = members === undefined ? undefined : usualLayout(bytes, members);
  return (layout !== undefined && readHeaders(bytes, layout, c)) || readWhole(bytes, members, c);
}

interface Layout {
  dialect: TransportDialect;
  data: StringSpan;
  headers: StringSpan;
}

/** Where data and headers are in a packet of the usual layout, or undefined for any other. */
function usualLayout(bytes: Uint8Array, members: Member[]): Layout | undefined {
  let dialect: TransportDialect = "seed";
  let data: StringSpan | undefined;
  let headers: StringSpan | undefined;
  for (const member of members) {
    const { start, end } = member.value;
    if (isKey(bytes, member, DATA_KEY) && data === undefined && isPlainBase64(bytes, start, end)) {
      data = { start: start + 1, end: end - 1 };
    } else if (isKey(bytes, member, HEADERS_KEY) && headers === undefined && bytes[start] === OPEN_OBJECT) {
      headers = member.value;
    } else if (
      isKey(bytes, member, PROTOCOL_KEY) &&
      dialect === "seed" &&
      spanEquals(bytes, member.value, V1_PROTOCOL)
    ) {
      dialect = "v1";
    } else {
      return undefined;
    }
  }
  return data !== undefined && headers !== undefined ? { dialect, data, headers } : undefined;
}

/** The packet from its headers member alone; undefined when they are not JSON, to be read whole instead. */
function readHeaders(bytes: Uint8Array, layout: Layout, c: Compiled): Read | undefined {
  const slice = bytes.subarray(layout.headers.start, layout.headers.end);
  // The headers sit one level inside the packet, and nothing else in it nests.
  if (jsonDepthExceeds(slice, MAX_JSON_DEPTH - 1))
    return { ok: false, reason: "too_deep", detail: depthDetail() };
  const text = decodeStrict(slice);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const bound = boundsProblem(value, c);
  if (bound !== undefined) return bound;
  const headers = checkTransportHeaders(value, layout.dialect);
  if (!headers.ok) return { ok: false, reason: refusalOf(headers.error), detail: headers.error.message };
  return { ok: true, dialect: layout.dialect, headers: headers.value, data: layout.data, unknown: "" };
}

function readWhole(bytes: Uint8Array, members: Member[] | undefined, c: Compiled): Read {
  const parsed = parseJson("transport", bytes);
  if (!parsed.ok) return { ok: false, reason: refusalOf(parsed.error), detail: parsed.error.message };
  const bound = boundsProblem((parsed.value as { headers?: unknown } | null)?.headers, c);
  if (bound !== undefined) return bound;
  const checked = checkTransport(parsed.value);
  if (!checked.ok) return { ok: false, reason: refusalOf(checked.error), detail: checked.error.message };
  const data = members === undefined ? undefined : stringMember(bytes, members, DATA_KEY);
  if (data === undefined)
    return { ok: false, reason: "malformed", detail: "data must appear exactly once as a top-level string" };
  const packet = checked.value;
  let unknown = "";
  for (const key in packet) {
    if (key === "protocol" || key === "data" || key === "headers") continue;
    unknown += `,${JSON.stringify(key)}:${JSON.stringify((packet as Record<string, unknown>)[key])}`;
  }
  return { ok: true, dialect: dialectOf(packet), headers: packet.headers, data, unknown };
}

/** Cheap bounds before the headers are checked, so that a hostile array costs no more than its parse. */
function boundsProblem(headers: unknown, c: Compiled): Read | undefined {
  const raw = headers as Record<string, unknown> | null | undefined;
  const targets = (raw?.federation as { target?: unknown } | null | undefined)?.target;
  if (Array.isArray(targets) && targets.length > c.maxTargets)
    return {
      ok: false,
      reason: "too_many_targets",
      detail: `${targets.length} targets, the limit is ${c.maxTargets}`,
    };
  const hops = raw?.["seen-by"];
  if (Array.isArray(hops) && hops.length >= c.maxHops)
    return {
      ok: false,
      reason: "too_many_hops",
      detail: `${hops.length} hops already, the limit is ${c.maxHops}`,
    };
  return undefined;
}

const OPEN_OBJECT = 0x7b;
const QUOTE = 0x22;

// The bytes of what Go's base64.StdEncoding emits: JSON string contents with nothing to unescape or validate.
const BASE64 = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
  BASE64[c.charCodeAt(0)] = 1;

function isPlainBase64(bytes: Uint8Array, start: number, end: number): boolean {
  if (bytes[start] !== QUOTE) return false;
  for (let i = start + 1; i < end - 1; i++) if (BASE64[bytes[i] as number] === 0) return false;
  return true;
}

function decodeStrict(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

const V1_PREFIX = encoder.encode('{"protocol":"choria:transport:1","data":"');
const SEED_PREFIX = encoder.encode('{"data":"');

/** The outgoing packet: `protocol`, `data` (the received bytes), `headers`, then any unknown members. */
function serialise(
  read: Extract<Read, { ok: true }>,
  headers: Record<string, unknown>,
  received: Uint8Array,
): Uint8Array {
  const prefix = read.dialect === "v1" ? V1_PREFIX : SEED_PREFIX;
  const suffix = `","headers":${JSON.stringify(headers)}${read.unknown}}`;
  const { data } = read;
  const dataLength = data.end - data.start;
  const out = new Uint8Array(prefix.length + dataLength + suffix.length * 3);
  out.set(prefix, 0);
  out.set(received.subarray(data.start, data.end), prefix.length);
  const { written } = encoder.encodeInto(suffix, out.subarray(prefix.length + dataLength));
  return out.subarray(0, prefix.length + dataLength + written);
}

function refusalOf(error: ProtocolError): RefusalReason {
  if (error.code === "unsupported_protocol") return "unsupported_protocol";
  if (error.code === "too_large") return "too_large";
  if (error.code === "too_deep") return "too_deep";
  return "malformed";
}

const DOLLAR = 0x24;

/**
 * Why a reply-to may not be used, or undefined. It must be a Choria reply subject within the subject
 * limits, outside NATS's reserved `$` namespaces, in a collective whose replies this cluster carries: a
 * request must not be able to aim its replies at another member collective's clients or at `$JS.API`.
 */
function replyToProblem(
  field: string,
  replyTo: string,
  c: Compiled,
): { reason: RefusalReason; detail: string } | undefined {
  if (replyTo.charCodeAt(0) === DOLLAR)
    return { reason: "reserved_subject", detail: `${field} ${quote(replyTo)} is in a reserved namespace` };
  const collective = replyCollective(replyTo) ?? parsedCollective(replyTo, REPLY_KINDS);
  if (collective === undefined)
    return { reason: "bad_reply_to", detail: `${field} ${quote(replyTo)} is not a reply subject` };
  if (!c.replyCollectives.has(collective))
    return {
      reason: "reply_not_allowed",
      detail: `cluster ${c.cluster} carries no replies for collective ${quote(collective)}`,
    };
  return undefined;
}

const TARGET_KINDS: ReadonlySet<string> = new Set(["broadcast", "node"]);
const REPLY_KINDS: ReadonlySet<string> = new Set(["reply"]);

/** The collective of a subject of one of these kinds, by the full parse, which has the last word. */
function parsedCollective(subject: string, kinds: ReadonlySet<string>): string | undefined {
  const parsed = parseSubject(subject);
  return parsed.ok && kinds.has(parsed.value.kind) && "collective" in parsed.value
    ? parsed.value.collective
    : undefined;
}

function targetProblem(target: string, c: Compiled): { reason: RefusalReason; detail: string } | undefined {
  if (target.charCodeAt(0) === DOLLAR)
    return { reason: "reserved_subject", detail: `target ${quote(target)} is in a reserved namespace` };
  const collective = targetCollective(target) ?? parsedCollective(target, TARGET_KINDS);
  if (collective === undefined)
    return {
      reason: "bad_target",
      detail: `target ${quote(target)} is not a broadcast agent or node subject`,
    };
  if (c.collectives.has(collective) || c.patterns.some((p) => matchesPattern(p, target))) return undefined;
  return { reason: "target_not_allowed", detail: `cluster ${c.cluster} may not reach ${quote(target)}` };
}

function matchesPattern(pattern: string[], subject: string): boolean {
  const tokens = subject.split(".");
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === ">") return tokens.length > i;
    if (i >= tokens.length || (p !== "*" && p !== tokens[i])) return false;
  }
  return tokens.length === pattern.length;
}

function ownName(dialect: TransportDialect, c: Compiled): string {
  return dialect === "v1" ? c.identity : c.seedName;
}

function countOwnHops(headers: Headers, dialect: TransportDialect, c: Compiled): number {
  const hops = headers["seen-by"] as (SeenByHop | string)[] | undefined;
  if (hops === undefined) return 0;
  let count = 0;
  if (dialect === "v1") {
    const prefix = `${c.identity} (`;
    for (const hop of hops as SeenByHop[]) if (hop[1] === c.identity || hop[1].startsWith(prefix)) count++;
  } else {
    for (const hop of hops as string[]) if (hop === c.seedName) count++;
  }
  return count;
}

function appendHop(
  headers: Headers,
  dialect: TransportDialect,
  c: Compiled,
  ctx: RouteContext,
  transformer: "choria_request_transformer" | "choria_reply_transformer",
): (SeenByHop | string)[] {
  const previous = (headers["seen-by"] ?? []) as (SeenByHop | string)[];
  if (dialect === "seed") {
    return c.recordRoute ? [...previous, ctx.ingestUrl, c.seedName] : [...previous, c.seedName];
  }
  const w = ctx.worker;
  const processor = `${c.identity} (choria_nats_ingest:${w}, ${transformer}:${w}, choria_nats_egest:${w})`;
  return [...previous, [ctx.ingestUrl, processor, ctx.egestUrl]];
}

const KNOWN_HEADERS = new Set(["reply-to", "mc_sender", "seen-by", "federation"]);

/** New routing headers in go-choria's key order, unknown keys kept after them. */
function rewriteHeaders(
  old: Headers,
  next: { replyTo: string | undefined; seenBy: (SeenByHop | string)[]; federation: Federation | undefined },
): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  if (next.replyTo !== undefined) headers["reply-to"] = next.replyTo;
  if (old.mc_sender !== undefined) headers.mc_sender = old.mc_sender;
  headers["seen-by"] = next.seenBy;
  if (next.federation !== undefined) headers.federation = next.federation;
  for (const key in old) if (!KNOWN_HEADERS.has(key)) headers[key] = (old as Record<string, unknown>)[key];
  return headers;
}

/** The federation header a request leaves with: its targets are spent, its client's reply-to kept. */
function withoutTarget(federation: Federation, replyTo: string): Federation {
  const copy: Record<string, unknown> = {};
  for (const key in federation)
    if (key !== "target") copy[key] = (federation as Record<string, unknown>)[key];
  copy["reply-to"] = replyTo;
  return copy as Federation;
}

// Details end up in logs: keep attacker-controlled text short.
function quote(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
}
