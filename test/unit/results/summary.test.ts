import { describe, expect, it } from "vitest";
import type { NodeReply } from "../../../lib/client/replies.ts";
import { type ReplyEntry, replyEntry, summarise } from "../../../lib/results/summary.ts";

const entry = (identity: string, statuscode = 0, ms = 5): ReplyEntry => ({
  identity,
  statuscode,
  statusmsg: statuscode === 0 ? "OK" : "Aborted",
  data: { identity },
  ms,
});

describe("replyEntry", () => {
  it("takes identity, status and data from the opened reply", () => {
    const reply: NodeReply = {
      sender: "node1",
      requestId: "r",
      agent: "demo",
      time: 1,
      payload: "",
      hash: "",
      rpc: { action: "echo", statuscode: 1, statusmsg: "nope", data: { a: 1 } },
      transport: { protocol: "choria:transport:1", data: "", headers: {} },
    };
    expect(replyEntry(reply, 12)).toEqual({
      identity: "node1",
      statuscode: 1,
      statusmsg: "nope",
      data: { a: 1 },
      ms: 12,
    });
  });
});

describe("summarise", () => {
  it("directed: counts ok and failed, and names the silent targets in target order", () => {
    const result = summarise({
      requestId: "rid",
      discovered: 5,
      targets: ["a", "b", "c", "d"],
      entries: [entry("c"), entry("a", 4)],
      unexpected: [],
      done: "timeout",
      discoveryMs: 40,
      elapsedMs: 1040,
    });
    expect(result).toEqual({
      request_id: "rid",
      summary: {
        discovered: 5,
        expected: 4,
        ok: 1,
        failed: 1,
        no_reply: 2,
        unexpected: 0,
        conflicts: 0,
        discovery_ms: 40,
        elapsed_ms: 1040,
        done: "timeout",
      },
      replies: [entry("c"), entry("a", 4)],
      no_reply: ["b", "d"],
      unexpected: [],
      conflicting: [],
    });
  });

  it("counts and names the nodes that answered twice with different replies", () => {
    const result = summarise({
      requestId: "rid",
      targets: ["a", "b"],
      entries: [entry("a"), entry("b")],
      unexpected: [],
      conflicting: ["b"],
      done: "expected",
      elapsedMs: 10,
    });
    expect(result.summary.conflicts).toBe(1);
    expect(result.conflicting).toEqual(["b"]);
    expect(result.summary.ok).toBe(2);
  });

  it("unexpected repliers are listed, counted in ok/failed, and do not fill an expected slot", () => {
    const result = summarise({
      requestId: "rid",
      targets: ["a", "b"],
      entries: [entry("a"), entry("x")],
      unexpected: ["x"],
      done: "timeout",
      elapsedMs: 1,
    });
    expect(result.summary).toMatchObject({ ok: 2, failed: 0, no_reply: 1, unexpected: 1, expected: 2 });
    expect(result.no_reply).toEqual(["b"]);
    expect(result.unexpected).toEqual(["x"]);
  });

  it("broadcast without expect: who should have answered is unknown", () => {
    const result = summarise({
      requestId: "rid",
      entries: [entry("a")],
      unexpected: [],
      done: "timeout",
      elapsedMs: 3,
    });
    expect(result.summary).toMatchObject({
      discovered: null,
      expected: null,
      no_reply: null,
      discovery_ms: null,
    });
    expect(result.no_reply).toEqual([]);
  });

  it("broadcast with expect: the shortfall is the no-reply count, names stay unknown", () => {
    const result = summarise({
      requestId: "rid",
      expect: 5,
      entries: [entry("a"), entry("b", 2)],
      unexpected: [],
      done: "timeout",
      elapsedMs: 3,
    });
    expect(result.summary).toMatchObject({ expected: 5, no_reply: 3, ok: 1, failed: 1 });
    expect(result.no_reply).toEqual([]);
  });

  it("expect wins over the target count for completeness", () => {
    const result = summarise({
      requestId: "rid",
      targets: ["a", "b", "c"],
      expect: 1,
      entries: [entry("a")],
      unexpected: [],
      done: "expected",
      elapsedMs: 1,
    });
    expect(result.summary.expected).toBe(1);
    expect(result.no_reply).toEqual(["b", "c"]);
  });
});
