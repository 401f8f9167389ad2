// A settled job as the answer a synchronous request gives: a sync request that ran through the job store
// (because its wait budget might run out) still answers in the shape callers of /v1/rpc know.
import type { DoneReason, ReplyEntry, RpcResult } from "../mod.ts";
import { isComplete, type JobRecord, type StoredResult } from "./model.ts";

export interface SyncView {
  /** Nodes found by discovery or named, before `limit`; undefined in broadcast mode. */
  discovered?: number;
  discoveryMs?: number;
  /** Milliseconds from the HTTP request's arrival to now. */
  elapsedMs: number;
}

/** A reply entry that was stored cut short says so, as the job API does. */
export type JobReplyEntry = ReplyEntry & Pick<StoredResult, "truncated" | "original_size">;

export function jobAsRpcResult(
  record: JobRecord,
  results: Iterable<StoredResult>,
  view: SyncView,
): RpcResult & { job_id: string; replies: JobReplyEntry[] } {
  const createdAt = Date.parse(record.created_at);
  const replies: JobReplyEntry[] = [];
  const silent: string[] = [];
  const unexpected: string[] = [];
  for (const result of results) {
    if (result.status === "no_reply") {
      silent.push(result.identity);
      continue;
    }
    if (result.unexpected) unexpected.push(result.identity);
    replies.push({
      identity: result.identity,
      statuscode: result.statuscode ?? -1,
      statusmsg: result.statusmsg ?? "",
      data: result.data,
      ms: result.received_at === null ? 0 : Math.max(0, Date.parse(result.received_at) - createdAt),
      ...(result.truncated ? { truncated: true, original_size: result.original_size } : {}),
    });
  }
  return {
    request_id: record.request_id,
    job_id: record.id,
    ...(record.discovery === null ? {} : { discovery: record.discovery }),
    summary: {
      discovered: view.discovered ?? null,
      expected: record.expected,
      ok: record.counts.ok,
      failed: record.counts.failed,
      no_reply: record.expected === null ? null : record.counts.no_reply,
      unexpected: record.counts.unexpected,
      conflicts: record.counts.conflicts,
      discovery_ms: view.discoveryMs ?? null,
      elapsed_ms: view.elapsedMs,
      done: doneReason(record),
    },
    replies,
    no_reply: silent,
    unexpected,
    conflicting: record.conflicting,
  };
}

function doneReason(record: JobRecord): DoneReason {
  if (record.state === "cancelled") return "cancelled";
  return isComplete(record) ? "expected" : "timeout";
}
