import { describe, expect, it } from "vitest";
import { replyDigest } from "../../../lib/client/node.ts";
import type { NodeReply } from "../../../lib/client/replies.ts";
import {
  encodeReply,
  encodeRpcReply,
  encodeSecureReply,
  encodeTransport,
  newReply,
  newRequest,
  newRpcReply,
  newTransportV1,
  transportData,
  utf8,
} from "../../../lib/protocol/mod.ts";
import { collectReplies, ReplyTally } from "../../../lib/results/collect-replies.ts";
import { replyHash } from "../../../lib/security/mod.ts";
import type { MessageBus } from "../../../lib/transport/mod.ts";

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

describe("collectReplies with a synchronous digest", () => {
  /** A sealed reply from `sender` to REQUEST, as a node sends it. */
  async function sealed(sender: string): Promise<Uint8Array> {
    const request = newRequest({
      agent: "rpcutil",
      collective: "mcollective",
      callerid: "choria=ci.mcollective",
      senderid: "gateway",
      payload: "{}",
      requestId: REQUEST,
    });
    const answer = encodeReply(newReply(request, sender, encodeRpcReply(newRpcReply("ping", {}))));
    const data = transportData(encodeSecureReply(answer, await replyHash(answer)));
    return utf8(encodeTransport(newTransportV1({ data, sender })));
  }

  function oneSubjectBus() {
    let handler: ((msg: { subject: string; data: Uint8Array }) => void) | undefined;
    const bus = {
      subscribe: (_subject: string, h: typeof handler) => {
        handler = h;
        return { unsubscribe: () => {}, drain: async () => {} };
      },
    } as unknown as MessageBus;
    return { bus, deliver: (data: Uint8Array) => handler?.({ subject: "inbox", data }) };
  }

  it("opens each reply with it, in the turn it arrives", async () => {
    const { bus, deliver } = oneSubjectBus();
    const seen: string[] = [];
    const collection = collectReplies(bus, "inbox", REQUEST, {
      timeoutMs: 5_000,
      expected: 2,
      digest: replyDigest,
      onReply: (r) => seen.push(r.sender),
    });
    deliver(await sealed("a"));
    expect(seen).toEqual(["a"]);
    deliver(await sealed("b"));
    expect(seen).toEqual(["a", "b"]);
    expect((await collection.result).done).toBe("expected");
  });

  it("refuses a reply whose hash the digest does not reproduce", async () => {
    const { bus, deliver } = oneSubjectBus();
    const collection = collectReplies(bus, "inbox", REQUEST, {
      timeoutMs: 50,
      expected: 1,
      digest: () => "not the hash",
    });
    deliver(await sealed("a"));
    const result = await collection.result;
    expect(result).toMatchObject({ done: "timeout", invalid: 1, replies: [] });
  });
});
