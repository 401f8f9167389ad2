import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { openReply } from "../../../../lib/client/replies.ts";
import { brokerConfigFrom } from "../../../../lib/federation/config.ts";
import { route } from "../../../../lib/federation/route.ts";
import { replySubject } from "../../../../lib/protocol/subjects.ts";
import { encodeTransport, newTransportV1 } from "../../../../lib/protocol/transport.ts";
import { escapeKeyToken, idempotencyKey, resultKey } from "../../../../lib/results/jobs/keys.ts";
import {
  addResult,
  addToCounts,
  decideEnd,
  emptyCounts,
  finalState,
  isComplete,
  jobView,
  limitData,
  MAX_CONFLICTING_LISTED,
  matchesFilters,
  newJobRecord,
  noReplyResult,
  readJobRecord,
  readResult,
  readResultTally,
  resultOfReply,
  settle,
} from "../../../../lib/results/jobs/model.ts";
import {
  isJobId,
  JOB_REPLY_WILDCARD,
  jobIdOfSubject,
  jobReplySubject,
  newJobId,
} from "../../../../lib/results/jobs/subjects.ts";
import { COLLECTIVE, newJob, repliesOf, signedRequest, simulatedNodes } from "./support.ts";

const encoder = new TextEncoder();

/** Inverse of escapeKeyToken, here only to prove that escaping loses nothing. */
function unescapeKeyToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "=") {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

describe("job ids and reply subjects", () => {
  it("job ids are 24 URL-safe characters and do not repeat", () => {
    const ids = new Set(Array.from({ length: 2000 }, newJobId));
    expect(ids.size).toBe(2000);
    for (const id of ids) expect(isJobId(id)).toBe(true);
    expect(isJobId("short")).toBe(false);
    expect(isJobId(`${"a".repeat(23)}.`)).toBe(false);
  });

  it("no job id starts with '-', which a command line would read as an option", () => {
    // One id in 64 did before; among 5,000 that is all but certain to show.
    const leading = new Set(Array.from({ length: 5000 }, () => newJobId()[0]));
    expect(leading.has("-")).toBe(false);
    expect(leading.has("_")).toBe(true);
  });

  it("a job's reply subject is the caller's reply subject with edgejob.<id> as the request id", () => {
    const id = newJobId();
    const subject = jobReplySubject(COLLECTIVE, "choria=rip.mcollective", id);
    const hash = replySubject(COLLECTIVE, "choria=rip.mcollective", "x").split(".")[2];
    expect(subject).toBe(`mcollective.reply.${hash}.edgejob.${id}`);
    expect(jobIdOfSubject(subject)).toBe(id);
  });

  it("the collectors' wildcard takes job subjects and never a synchronous reply subject", () => {
    const matches = (subject: string) => {
      const pattern = JOB_REPLY_WILDCARD.split(".");
      const tokens = subject.split(".");
      return tokens.length === pattern.length && pattern.every((p, i) => p === "*" || p === tokens[i]);
    };
    expect(matches(jobReplySubject(COLLECTIVE, "choria=a", newJobId()))).toBe(true);
    expect(matches(replySubject(COLLECTIVE, "choria=a", "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e"))).toBe(false);
    expect(matches("mcollective.reply.abc.1234.5")).toBe(false);
    expect(
      jobIdOfSubject(replySubject(COLLECTIVE, "choria=a", "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e")),
    ).toBeUndefined();
    expect(jobIdOfSubject("mcollective.reply.abc.edgejob.not-a-job-id")).toBeUndefined();
  });

  it("the federation broker routes a request with a job reply-to, and its replies back to it", () => {
    const parsed = brokerConfigFrom({ cluster: "C1", instance: "i1", identity: "fb1" });
    if (!parsed.ok) throw new Error(parsed.error);
    const replyTo = jobReplySubject(COLLECTIVE, "choria=rip.mcollective", newJobId());
    const ctx = { ingestUrl: "nats://fed:4222", egestUrl: "nats://coll:4222", worker: 0 };
    const request = newTransportV1({
      data: "e30=",
      sender: "gateway",
      replyTo,
      federation: { req: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e", target: ["mcollective.node.node1.example.net"] },
    });
    const out = route({ side: "federation", body: encodeTransport(request) }, parsed.config, ctx);
    expect(out.ok).toBe(true);
    // What a node sends back: the federation header as the broker left it on the request.
    const reply = {
      protocol: "choria:transport:1",
      data: "e30=",
      headers: {
        mc_sender: "node1",
        federation: { req: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e", "reply-to": replyTo },
      },
    };
    const back = route({ side: "collective", body: JSON.stringify(reply) }, parsed.config, ctx);
    expect(back.ok && back.targets).toEqual([replyTo]);
  });
});

describe("KV keys", () => {
  it("escaping identities is injective and yields one safe token", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }), (identity) => {
        const token = escapeKeyToken(identity);
        expect(token).toMatch(/^[A-Za-z0-9_=-]+$/);
        expect(unescapeKeyToken(token)).toBe(identity);
      }),
    );
    expect(resultKey("J", "node1.example.net")).toBe("job.J.r.node1=2Eexample=2Enet");
  });

  it("escaping by code is the same as escaping each code point's UTF-8, lone surrogates included", () => {
    const byBytes = (text: string) => {
      let out = "";
      for (const char of text) {
        if (/^[A-Za-z0-9_-]$/.test(char)) out += char;
        else
          for (const byte of new TextEncoder().encode(char))
            out += `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
      }
      return out === "" ? "=" : out;
    };
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (text) => {
        expect(escapeKeyToken(text)).toBe(byBytes(text));
      }),
    );
    for (const text of ["", "\ud800", "a\udc00b", "😀.x", "ü", "\u007f"])
      expect(escapeKeyToken(text)).toBe(byBytes(text));
  });

  it("idempotency keys hash the caller's key, so any text maps to a bounded key of that caller", async () => {
    const a = await idempotencyKey("key.ci", "delivery 1");
    expect(a).toMatch(/^idem\.key=2Eci\.[A-Za-z0-9_-]{43}$/);
    expect(await idempotencyKey("key.ci", "delivery 1")).toBe(a);
    expect(await idempotencyKey("key.ci", "delivery 2")).not.toBe(a);
    expect(await idempotencyKey("other", "delivery 1")).not.toBe(a);
  });
});

describe("per-node data limit", () => {
  it("keeps data that fits as it is", () => {
    expect(limitData({ a: 1 }, 100)).toEqual({ data: { a: 1 } });
    const exact = { s: "x".repeat(100) };
    expect(limitData(exact, JSON.stringify(exact).length)).toEqual({ data: exact });
  });

  it("cuts data above the limit to its first bytes of JSON, flagged with the original size", () => {
    const data = { text: "a".repeat(5000) };
    const limited = limitData(data, 1000);
    expect(limited.truncated).toBe(true);
    expect(limited.original_size).toBe(JSON.stringify(data).length);
    expect(limited.data).toBe(JSON.stringify(data).slice(0, 1000));
  });

  it("never cuts inside a UTF-8 character", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", minLength: 1, maxLength: 300 }),
        fc.integer({ min: 4, max: 200 }),
        (text, max) => {
          const limited = limitData(text, max);
          const json = JSON.stringify(text);
          if (limited.truncated === undefined) {
            expect(encoder.encode(json).byteLength).toBeLessThanOrEqual(max);
            return;
          }
          const kept = limited.data as string;
          expect(encoder.encode(kept).byteLength).toBeLessThanOrEqual(max);
          expect(json.startsWith(kept)).toBe(true);
          expect(limited.original_size).toBe(encoder.encode(json).byteLength);
        },
      ),
    );
  });
});

describe("results and counts", () => {
  it("the tally reader takes what counting needs from what readResult takes, and refuses the same bad fields", () => {
    const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    const stored = { ...noReplyResult("n1"), status: "ok", statuscode: 0, statusmsg: "OK", unexpected: true };
    expect(readResult(bytes(stored)).ok).toBe(true);
    expect(readResultTally(bytes(stored))).toEqual({
      ok: true,
      value: { identity: "n1", status: "ok", unexpected: true },
    });
    expect(readResultTally(bytes(noReplyResult("n2")))).toEqual({
      ok: true,
      value: { identity: "n2", status: "no_reply" },
    });
    for (const bad of [
      { ...stored, status: "maybe" },
      { ...stored, identity: 7 },
      { ...stored, unexpected: false },
      [],
      null,
    ]) {
      expect(readResult(bytes(bad)).ok).toBe(false);
      expect(readResultTally(bytes(bad)).ok).toBe(false);
    }
    expect(readResultTally(new TextEncoder().encode("{"))).toMatchObject({ ok: false });
  });

  it("a reply becomes a stored result with its status, data and arrival time", async () => {
    const nodes = await simulatedNodes(2);
    const [a, b] = nodes.fleet.map((n) => n.identity) as [string, string];
    const request = await signedRequest(
      nodes,
      { agent: "demo", action: "fail", data: { code: 4, message: "nope" } },
      jobReplySubject(COLLECTIVE, nodes.client.callerid, newJobId()),
    );
    const [reply] = await repliesOf(nodes, request.body, [a]);
    const opened = await openReply(reply!.body);
    if (!opened.ok) throw opened.error;
    const result = resultOfReply(opened.value, {
      maxDataBytes: 1000,
      receivedAt: 1_700_000_000_000,
      unexpected: true,
    });
    expect(result).toEqual({
      identity: a,
      status: "failed",
      statuscode: 4,
      statusmsg: "nope",
      data: {},
      unexpected: true,
      received_at: "2023-11-14T22:13:20.000Z",
      hash: opened.value.hash,
    });
    expect(result.hash).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(readResult(encoder.encode(JSON.stringify(result)))).toEqual({ ok: true, value: result });
    expect(noReplyResult(b).status).toBe("no_reply");
  });

  it("counts ok and failed by status code, unexpected repliers apart, and completes on expected answers", () => {
    const record = newJobRecord("J".repeat(24), newJob({ request_id: "r", targets: ["a", "b"] }), 0, 5);
    const ok = { ...noReplyResult("a"), status: "ok" as const, statuscode: 0 };
    const failed = { ...noReplyResult("b"), status: "failed" as const, statuscode: 1 };
    const stranger = { ...ok, identity: "z", unexpected: true as const };
    let counts = addResult(emptyCounts(), stranger);
    counts = addResult(counts, ok);
    expect(isComplete(record, counts)).toBe(false);
    counts = addResult(counts, failed);
    expect(counts).toEqual({ ok: 2, failed: 1, no_reply: 0, unexpected: 1, conflicts: 0 });
    expect(isComplete(record, counts)).toBe(true);
    expect(finalState("deadline", record, counts)).toBe("complete");
    expect(finalState("deadline", record, addResult(emptyCounts(), ok))).toBe("timed_out");
    expect(finalState("cancel", record, counts)).toBe("cancelled");
  });

  it("a job that only knows a count gets its no_reply from the count when it settles", () => {
    const record = newJobRecord("J".repeat(24), newJob({ request_id: "r", expect: 5 }), 0, 5);
    const tallied = { ...emptyCounts(), ok: 2, failed: 1 };
    const settled = settle(decideEnd(record, "timed_out", 10), { counts: tallied, conflicting: [] }, 42);
    expect(settled.counts.no_reply).toBe(2);
    expect(settled.settled_seq).toBe(42);
    // Without any expectation nothing can be missing: the deadline is the normal end.
    const open = newJobRecord("J".repeat(24), newJob({ request_id: "r" }), 0, 5);
    expect(finalState("deadline", open, emptyCounts())).toBe("complete");
  });

  it("filters match statuses, and `unexpected` matches repliers outside the targets", () => {
    const ok = { ...noReplyResult("a"), status: "ok" as const };
    const stranger = { ...ok, unexpected: true as const };
    expect(matchesFilters(ok, new Set(["failed"]))).toBe(false);
    expect(matchesFilters(ok, new Set(["ok"]))).toBe(true);
    expect(matchesFilters(ok, new Set(["unexpected"]))).toBe(false);
    expect(matchesFilters(stranger, new Set(["unexpected"]))).toBe(true);
    expect(matchesFilters(ok, undefined)).toBe(true);
  });
});

describe("the job record", () => {
  it("reads back what was written, and refuses a record that is not one", () => {
    const record = newJobRecord(
      newJobId(),
      newJob({
        request_id: "r",
        targets: ["a"],
        callback: {
          kind: "url",
          url: "https://hooks.example/x",
          secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
      }),
      1000,
      3,
    );
    expect(readJobRecord(encoder.encode(JSON.stringify(record)))).toEqual({ ok: true, value: record });
    const broken = readJobRecord(encoder.encode(JSON.stringify({ ...record, state: "sleeping" })));
    expect(broken.ok).toBe(false);
    expect(readJobRecord(encoder.encode("{")).ok).toBe(false);
  });

  it("a record from before conflicts were kept reads with none", () => {
    const record = newJobRecord(newJobId(), newJob({ request_id: "r", targets: ["a"] }), 1000, 3);
    const { conflicting: _, ...older } = record;
    const { conflicts: __, ...olderCounts } = record.counts;
    const read = readJobRecord(encoder.encode(JSON.stringify({ ...older, counts: olderCounts })));
    expect(read).toEqual({ ok: true, value: record });
  });

  it("counting conflicts lists each identity once, and no more than MAX_CONFLICTING_LISTED", () => {
    const record = newJobRecord(newJobId(), newJob({ request_id: "r", targets: ["a"] }), 1000, 3);
    const delta = (conflicts: number) => ({ ...emptyCounts(), conflicts });
    const once = addToCounts(record, delta(2), ["a", "a"]);
    expect(once).toMatchObject({ counts: { conflicts: 2 }, conflicting: ["a"] });
    const many = Array.from({ length: MAX_CONFLICTING_LISTED + 5 }, (_, n) => `node${n}`);
    const full = addToCounts(once, delta(many.length), many);
    expect(full.counts.conflicts).toBe(2 + many.length);
    expect(full.conflicting).toEqual(["a", ...many.slice(0, MAX_CONFLICTING_LISTED - 1)]);
  });

  it("the API view shows the callback target but never its secret, and what is still outstanding", () => {
    const record = newJobRecord(
      newJobId(),
      newJob({
        request_id: "r",
        targets: ["a", "b", "c"],
        callback: {
          kind: "url",
          url: "https://hooks.example/x",
          secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
      }),
      0,
      3,
    );
    const view = jobView({ ...record, counts: { ...emptyCounts(), ok: 1 } });
    expect(JSON.stringify(view)).not.toContain("whsec_");
    expect(view.callback).toMatchObject({
      kind: "url",
      target: "https://hooks.example/x",
      status: "waiting",
    });
    expect(view.counts.outstanding).toBe(2);
    const ended = decideEnd(record, "timed_out", 5000);
    expect(ended.callback?.status).toBe("pending");
    expect(ended.callback?.next_attempt_at).toBe("1970-01-01T00:00:05.000Z");
    expect(
      jobView(settle(ended, { counts: { ...emptyCounts(), ok: 1, no_reply: 2 }, conflicting: [] }, 9)).counts
        .outstanding,
    ).toBe(0);
  });
});
