import type { NodeReply } from "../client/mod.ts";
import type { DoneReason } from "./collect-replies.ts";

/** One node's answer as the gateway reports it. */
export interface ReplyEntry {
  identity: string;
  statuscode: number;
  statusmsg: string;
  data: unknown;
  /** Milliseconds from publishing the request to this reply's arrival. */
  ms: number;
}

/**
 * The outcome of a request in numbers. Counts that cannot be known are null: without discovery or a
 * node list (broadcast mode) nobody knows who should have answered, so `discovered` is null and
 * `expected` / `no_reply` are null unless the caller said how many to expect.
 */
interface RpcSummary {
  /** Nodes found by discovery, or named in `nodes`; null in broadcast mode. */
  discovered: number | null;
  /** Replies that make the request complete: the targets after `limit`, or `expect` when given. */
  expected: number | null;
  /** Replies with statuscode 0, unexpected repliers included. */
  ok: number;
  /** Replies with any other statuscode, unexpected repliers included. */
  failed: number;
  /** Expected nodes that did not answer. */
  no_reply: number | null;
  /** Nodes that answered without being a target (only knowable with targets). */
  unexpected: number;
  /** Nodes that answered twice with different replies. */
  conflicts: number;
  /** Milliseconds spent discovering, or null when there was no discovery. */
  discovery_ms: number | null;
  /** Milliseconds from the HTTP request's arrival to the end of the collection. */
  elapsed_ms: number;
  /** The rule that ended the collection. */
  done: DoneReason;
}

/** Why discovery ended: its whole window ran out, replies stalled (StallWatch), or the caller went. */
export type DiscoveryEnd = "timeout" | "stall" | "cancelled";

/**
 * How discovery went, when it ran. Only a discovery that waited its whole window is `complete`, as
 * `choria req` waits it: one the stall rule ended early found everyone who had answered by then, and
 * says so rather than passing for the whole fleet.
 */
export interface DiscoveryOutcome {
  complete: boolean;
  /** Nodes that answered (before `limit`). */
  found: number;
  reason: DiscoveryEnd;
}

export interface RpcResult {
  request_id: string;
  summary: RpcSummary;
  /** Present when the request ran discovery. */
  discovery?: DiscoveryOutcome;
  replies: ReplyEntry[];
  /** Targets that stayed silent, in target order; empty when targets are unknown (broadcast mode). */
  no_reply: string[];
  /** Repliers that were not targets. */
  unexpected: string[];
  /** Nodes that sent a second reply different from their first (which is the one in `replies`). */
  conflicting: string[];
}

/** The entry for one opened reply; every non-discovery reply carries a parsed RPC body. */
export function replyEntry(reply: NodeReply, ms: number): ReplyEntry {
  return {
    identity: reply.sender,
    statuscode: reply.rpc?.statuscode ?? -1,
    statusmsg: reply.rpc?.statusmsg ?? "",
    data: reply.rpc?.data ?? null,
    ms,
  };
}

export interface SummaryInput {
  requestId: string;
  /** Discovered or caller-named nodes, before `limit`; undefined in broadcast mode. */
  discovered?: number;
  /** The identities the request went to; undefined in broadcast mode. */
  targets?: readonly string[];
  /** The caller's `expect`, which wins over the target count. */
  expect?: number;
  entries: readonly ReplyEntry[];
  unexpected: readonly string[];
  conflicting?: readonly string[];
  done: DoneReason;
  discoveryMs?: number;
  discovery?: DiscoveryOutcome;
  elapsedMs: number;
}

/** Builds the response document from what was sent and what came back. Pure. */
export function summarise(input: SummaryInput): RpcResult {
  const answered = new Set(input.entries.map((e) => e.identity));
  const silent = input.targets ? input.targets.filter((t) => !answered.has(t)) : [];
  const expected = input.expect ?? input.targets?.length ?? null;
  const unexpected = new Set(input.unexpected);
  const expectedAnswers = input.entries.filter((e) => !unexpected.has(e.identity)).length;
  let noReply: number | null = null;
  if (input.targets) noReply = silent.length;
  else if (expected !== null) noReply = Math.max(0, expected - expectedAnswers);
  const ok = input.entries.filter((e) => e.statuscode === 0).length;
  return {
    request_id: input.requestId,
    ...(input.discovery === undefined ? {} : { discovery: input.discovery }),
    summary: {
      discovered: input.discovered ?? null,
      expected,
      ok,
      failed: input.entries.length - ok,
      no_reply: noReply,
      unexpected: input.unexpected.length,
      conflicts: input.conflicting?.length ?? 0,
      discovery_ms: input.discoveryMs ?? null,
      elapsed_ms: input.elapsedMs,
      done: input.done,
    },
    replies: [...input.entries],
    no_reply: silent,
    unexpected: [...input.unexpected],
    conflicting: [...(input.conflicting ?? [])],
  };
}
