import { describe, expect, it } from "vitest";
import type { NodeReply } from "../../../lib/client/replies.ts";
import { ReplyTally } from "../../../lib/results/collect-replies.ts";

const REQUEST = "0123456789abcdef0123456789abcdef";

function reply(sender: string, requestId = REQUEST, hash = "h1"): NodeReply {
  return {
    sender,
    requestId,
    agent: "rpcutil",
    time: 1,
    payload: "{}",
    hash,
    transport: { protocol: "choria:transport:1", data: "", headers: {} },
  };
}

describe("ReplyTally", () => {
  it("keeps one reply per sender and counts repeats as duplicates", () => {
    const tally = new ReplyTally(REQUEST, { expected: 2 });
    expect(tally.accept(reply("a"))).toBe(true);
    expect(tally.accept(reply("a"))).toBe(false);
    expect(tally.complete).toBe(false);
    expect(tally.accept(reply("b"))).toBe(true);
    expect(tally.complete).toBe(true);
    expect(tally.duplicates).toBe(1);
    expect(tally.replies.map((r) => r.sender)).toEqual(["a", "b"]);
  });

  it("names a sender whose second reply differs from its first, once, and keeps the first", () => {
    const tally = new ReplyTally(REQUEST, { expected: 2 });
    expect(tally.accept(reply("a", REQUEST, "h1"))).toBe(true);
    expect(tally.accept(reply("a", REQUEST, "forged"))).toBe(false);
    expect(tally.accept(reply("a", REQUEST, "forged again"))).toBe(false);
    expect(tally.accept(reply("a", REQUEST, "h1"))).toBe(false);
    expect(tally.conflicting).toEqual(["a"]);
    expect(tally.duplicates).toBe(1);
    expect(tally.replies.map((r) => r.hash)).toEqual(["h1"]);
    expect(tally.complete).toBe(false);
  });

  it("counts replies to another request as invalid, never as answers", () => {
    const tally = new ReplyTally(REQUEST, { expected: 1 });
    expect(tally.accept(reply("a", "ffffffffffffffffffffffffffffffff"))).toBe(false);
    expect(tally.invalid).toBe(1);
    expect(tally.complete).toBe(false);
  });

  it("lists senders outside the expected identities and does not let them complete the set", () => {
    const tally = new ReplyTally(REQUEST, { expectedIdentities: ["a", "b"] });
    tally.accept(reply("a"));
    tally.accept(reply("stranger"));
    expect(tally.unexpected).toEqual(["stranger"]);
    expect(tally.complete).toBe(false);
    tally.accept(reply("b"));
    expect(tally.complete).toBe(true);
  });

  it("is never complete without a target", () => {
    const tally = new ReplyTally(REQUEST, {});
    tally.accept(reply("a"));
    expect(tally.complete).toBe(false);
  });
});
