import { describe, expect, it } from "vitest";
import {
  addResult,
  decideEnd,
  emptyCounts,
  newJobRecord,
  noReplyResult,
  type StoredResult,
  settle,
} from "../../../../lib/results/jobs/model.ts";
import { jobAsRpcResult } from "../../../../lib/results/jobs/rpc-result.ts";

const T0 = Date.parse("2026-11-26T10:00:00.000Z");

function reply(identity: string, statuscode: number, atMs: number, extra: Partial<StoredResult> = {}) {
  return {
    identity,
    status: statuscode === 0 ? "ok" : "failed",
    statuscode,
    statusmsg: statuscode === 0 ? "OK" : "Aborted",
    data: { n: identity },
    received_at: new Date(T0 + atMs).toISOString(),
    ...extra,
  } satisfies StoredResult;
}

function settledJob(targets: string[] | undefined, results: StoredResult[], state: "expected" | "cancel") {
  const record = newJobRecord(
    "job1",
    {
      request_id: "req1",
      caller: "admin",
      cluster: "C1",
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
      ...(targets === undefined ? {} : { targets }),
      timeout_ms: 10_000,
    },
    T0,
    1,
  );
  const counts = results.reduce(addResult, emptyCounts());
  const ended = decideEnd(record, state === "cancel" ? "cancelled" : "complete", T0 + 500);
  return settle(
    { ...ended, state: state === "cancel" ? "cancelled" : ended.state },
    { counts, conflicting: [] },
    99,
  );
}

describe("jobAsRpcResult", () => {
  it("reports a settled job in the sync answer's shape, with times relative to the job's start", () => {
    const results = [reply("a", 0, 120), reply("b", 1, 250), noReplyResult("c")];
    const job = settledJob(["a", "b", "c"], results, "expected");
    const answer = jobAsRpcResult(job, results, { discovered: 3, discoveryMs: 40, elapsedMs: 900 });
    expect(answer).toEqual({
      request_id: "req1",
      job_id: "job1",
      summary: {
        discovered: 3,
        expected: 3,
        ok: 1,
        failed: 1,
        no_reply: 1,
        unexpected: 0,
        conflicts: 0,
        discovery_ms: 40,
        elapsed_ms: 900,
        done: "timeout",
      },
      replies: [
        { identity: "a", statuscode: 0, statusmsg: "OK", data: { n: "a" }, ms: 120 },
        { identity: "b", statuscode: 1, statusmsg: "Aborted", data: { n: "b" }, ms: 250 },
      ],
      no_reply: ["c"],
      unexpected: [],
      conflicting: [],
    });
  });

  it("says expected when every target answered, keeps truncation flags and lists unexpected repliers", () => {
    const results = [
      reply("a", 0, 10, { truncated: true, original_size: 40_000, data: "{" }),
      reply("z", 0, 20, { unexpected: true }),
    ];
    const answer = jobAsRpcResult(settledJob(["a"], results, "expected"), results, { elapsedMs: 30 });
    expect(answer.summary).toMatchObject({ done: "expected", ok: 2, unexpected: 1, discovered: null });
    expect(answer.replies[0]).toMatchObject({ identity: "a", truncated: true, original_size: 40_000 });
    expect(answer.unexpected).toEqual(["z"]);
  });

  it("says cancelled for a cancelled job, and leaves no_reply unknown when nobody knew whom to expect", () => {
    const results = [reply("a", 0, 10)];
    const answer = jobAsRpcResult(settledJob(undefined, results, "cancel"), results, { elapsedMs: 30 });
    expect(answer.summary).toMatchObject({ done: "cancelled", expected: null, no_reply: null });
  });
});
