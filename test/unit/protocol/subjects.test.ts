import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../../../lib/protocol/errors.ts";
import {
  broadcastSubject,
  collectiveSubject,
  federationSubject,
  formatSubject,
  IDENTITY_MAX_LENGTH,
  isFederationTarget,
  isReplySubject,
  nodeSubject,
  type ParsedSubject,
  parseSubject,
  replySubject,
  SUBJECT_MAX_LENGTH,
  serviceSubject,
  statsSubject,
  subjectProblem,
} from "../../../lib/protocol/subjects.ts";

function parsed(subject: string): ParsedSubject {
  const result = parseSubject(subject);
  if (!result.ok) throw result.error;
  return result.value;
}

function refusal(subject: string): ProtocolError {
  const result = parseSubject(subject);
  if (result.ok) throw new Error(`${subject} was accepted as ${JSON.stringify(result.value)}`);
  expect(result.error).toBeInstanceOf(ProtocolError);
  expect(result.error.layer).toBe("subject");
  return result.error;
}

describe("subject builders", () => {
  it("build every Choria subject shape", () => {
    expect(broadcastSubject("mcollective", "rpcutil")).toBe("mcollective.broadcast.agent.rpcutil");
    expect(serviceSubject("mcollective", "choria_util")).toBe("mcollective.broadcast.service.choria_util");
    expect(nodeSubject("mcollective", "node1.example.net")).toBe("mcollective.node.node1.example.net");
    expect(federationSubject("C1")).toBe("choria.federation.C1.federation");
    expect(collectiveSubject("C1")).toBe("choria.federation.C1.collective");
    expect(statsSubject("C1")).toBe("choria.federation.C1.stats");
  });

  it("name reply subjects after md5 of the caller id, as the spec's example", () => {
    expect(replySubject("mcollective", "choria=rip.mcollective", "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e")).toBe(
      "mcollective.reply.37bdf08389145a56c13096c178802d3b.9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e",
    );
  });

  it.each([
    ["wildcard collective", () => broadcastSubject("*", "rpcutil"), "collective"],
    ["full wildcard agent", () => broadcastSubject("mcollective", ">"), "agent"],
    ["dotted agent", () => serviceSubject("mcollective", "a.b"), "agent"],
    ["empty collective", () => nodeSubject("", "node1"), "collective"],
    ["identity with a space", () => nodeSubject("mcollective", "node 1"), "identity"],
    ["identity with a trailing dot", () => nodeSubject("mcollective", "node1."), "identity"],
    ["identity over the limit", () => nodeSubject("m", "a".repeat(IDENTITY_MAX_LENGTH + 1)), "identity"],
    ["cluster with a newline", () => federationSubject("c1\n"), "cluster"],
    ["cluster with a wildcard", () => collectiveSubject("c*"), "cluster"],
    ["cluster over the limit", () => statsSubject("c".repeat(129)), "cluster"],
    ["request id with a wildcard", () => replySubject("mcollective", "choria=x", ">"), "requestId"],
  ])("throw a subject ProtocolError for a %s", (_name, build, field) => {
    try {
      build();
      expect.unreachable("builder accepted an unsafe token");
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).layer).toBe("subject");
      expect((err as ProtocolError).field).toBe(field);
    }
  });
});

describe("parseSubject", () => {
  it("classifies every shape with its fields", () => {
    expect(parsed("mcollective.broadcast.agent.rpcutil")).toEqual({
      kind: "broadcast",
      collective: "mcollective",
      agent: "rpcutil",
    });
    expect(parsed("eu.broadcast.service.scout")).toEqual({
      kind: "service",
      collective: "eu",
      agent: "scout",
    });
    expect(parsed("mcollective.node.node1.example.net")).toEqual({
      kind: "node",
      collective: "mcollective",
      identity: "node1.example.net",
    });
    expect(parsed("mcollective.node.node1")).toEqual({
      kind: "node",
      collective: "mcollective",
      identity: "node1",
    });
    expect(
      parsed("mcollective.reply.37bdf08389145a56c13096c178802d3b.9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e"),
    ).toEqual({
      kind: "reply",
      collective: "mcollective",
      callerHash: "37bdf08389145a56c13096c178802d3b",
      requestId: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e",
    });
    expect(parsed("choria.federation.C1.federation")).toEqual({ kind: "federation", cluster: "C1" });
    expect(parsed("choria.federation.C1.collective")).toEqual({ kind: "collective", cluster: "C1" });
    expect(parsed("choria.federation.C1.stats")).toEqual({ kind: "stats", cluster: "C1" });
  });

  it("keeps a legacy Ruby reply suffix <pid>.<sequence> as the request id", () => {
    expect(parsed("mcollective.reply.37bdf08389145a56c13096c178802d3b.4242.7")).toMatchObject({
      kind: "reply",
      requestId: "4242.7",
    });
  });

  it("reads a collective named choria as a collective when the second token is not federation", () => {
    expect(parsed("choria.node.choria.federation.x")).toEqual({
      kind: "node",
      collective: "choria",
      identity: "choria.federation.x",
    });
  });

  it.each([
    ["", ""],
    ["mcollective.broadcast.agent.*", ""],
    ["mcollective.broadcast.agent.>", ""],
    ["mcollective.node.>", ""],
    ["*.node.node1", ""],
    ["mcollective.node.node*1", ""],
    ["mcollective.node.node 1", ""],
    ["mcollective.node.node1\t", ""],
    ["mcollective.node.node1\r\n", ""],
    ["mcollective.node.no\u0000de", ""],
    ["mcollective.node.no\u007fde", ""],
    ["mcollective.node.nœud", ""],
    ["mcollective.node.node\u00a0one", ""],
    [".mcollective.node.node1", ""],
    ["mcollective.node.node1.", ""],
    ["mcollective..node.node1", ""],
    ["mcollective.node..node1", ""],
    ["mcollective.node", ""],
    ["mcollective.node.", ""],
    ["mcollective.broadcast.agent", ""],
    ["mcollective.broadcast.agent.rpcutil.extra", ""],
    ["mcollective.broadcast.other.rpcutil", ""],
    ["mcollective.reply.37bdf08389145a56c13096c178802d3b", "requestId"],
    ["mcollective.unknown.thing", ""],
    ["choria.federation.C1", ""],
    ["choria.federation.C1.other", ""],
    ["choria.federation.C1.federation.extra", ""],
    ["plain", ""],
  ])("refuses %j", (subject, field) => {
    const error = refusal(subject);
    expect(error.code).toBe("invalid_field");
    expect(error.field).toBe(field);
  });

  it("refuses over-long identities, names and subjects as too_large", () => {
    const longIdentity = `mcollective.node.${"a".repeat(IDENTITY_MAX_LENGTH + 1)}`;
    expect(refusal(longIdentity)).toMatchObject({ code: "too_large", field: "identity" });
    expect(parsed(`mcollective.node.${"a".repeat(IDENTITY_MAX_LENGTH)}`)).toMatchObject({ kind: "node" });
    expect(refusal(`${"c".repeat(129)}.node.node1`)).toMatchObject({
      code: "too_large",
      field: "collective",
    });
    const longReply = `m.reply.${"h".repeat(32)}.${"r".repeat(SUBJECT_MAX_LENGTH)}`;
    expect(refusal(longReply)).toMatchObject({ code: "too_large", field: "" });
  });

  it("round-trips built subjects through the parser", () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
    const identity = fc
      .array(fc.stringMatching(/^[a-z0-9-]{1,20}$/), { minLength: 1, maxLength: 6 })
      .map((labels) => labels.join("."));
    const subjectArb: fc.Arbitrary<ParsedSubject> = fc.oneof(
      fc.record({ kind: fc.constant("broadcast" as const), collective: name, agent: name }),
      fc.record({ kind: fc.constant("service" as const), collective: name, agent: name }),
      fc.record({ kind: fc.constant("node" as const), collective: name, identity }),
      fc.record({
        kind: fc.constant("reply" as const),
        collective: name,
        callerHash: fc.stringMatching(/^[0-9a-f]{32}$/),
        requestId: fc.stringMatching(/^[0-9a-f]{32}$/),
      }),
      fc.record({
        kind: fc.constantFrom("federation" as const, "collective" as const, "stats" as const),
        cluster: name,
      }),
    );
    fc.assert(
      fc.property(subjectArb, (subject) => {
        expect(parsed(formatSubject(subject))).toEqual(subject);
      }),
    );
  });
});

describe("subject predicates", () => {
  it("allow only broadcast agent and node subjects as federation targets", () => {
    expect(isFederationTarget("mcollective.broadcast.agent.rpcutil")).toBe(true);
    expect(isFederationTarget("mcollective.node.node1.example.net")).toBe(true);
    expect(isFederationTarget("mcollective.broadcast.service.rpcutil")).toBe(false);
    expect(isFederationTarget("mcollective.reply.37bdf08389145a56c13096c178802d3b.1")).toBe(false);
    expect(isFederationTarget("choria.federation.C1.federation")).toBe(false);
    expect(isFederationTarget("choria.federation.C1.collective")).toBe(false);
    expect(isFederationTarget("mcollective.broadcast.agent.*")).toBe(false);
    expect(isFederationTarget("mcollective.node.>")).toBe(false);
  });

  it("recognise reply subjects only", () => {
    expect(
      isReplySubject("mcollective.reply.37bdf08389145a56c13096c178802d3b.9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e"),
    ).toBe(true);
    expect(isReplySubject("mcollective.reply.x.>")).toBe(false);
    expect(isReplySubject("choria.federation.C1.collective")).toBe(false);
    expect(isReplySubject("mcollective.node.reply.x.y")).toBe(false);
  });
});

// Issue 12: subjects taken from packets are held to limits far inside nats-server's 4 KB control line.
describe("subject limits", () => {
  it("subjectProblem refuses over-long, many-token, wildcard, whitespace, empty-token and $ subjects", () => {
    expect(subjectProblem("mcollective.reply.abc.123")).toBeUndefined();
    expect(subjectProblem("choria.federation.C1.collective")).toBeUndefined();
    expect(subjectProblem(`a.${"x".repeat(5000)}`)).toMatch(/512/);
    expect(subjectProblem(Array(65).fill("t").join("."))).toMatch(/64 tokens/);
    expect(subjectProblem(Array(64).fill("t").join("."))).toBeUndefined();
    expect(subjectProblem("a.>")).toMatch(/wildcard/);
    expect(subjectProblem("a.*.b")).toMatch(/wildcard/);
    expect(subjectProblem("a.b c")).toMatch(/whitespace/);
    expect(subjectProblem("a..b")).toMatch(/empty token/);
    expect(subjectProblem("$JS.API.INFO")).toMatch(/reserved/);
    expect(subjectProblem("")).toMatch(/empty/);
  });

  it("parseSubject refuses $ namespaces and more than 64 tokens; builders throw on them", () => {
    expect(parseSubject(`$JS.reply.x.${"a".repeat(32)}`).ok).toBe(false);
    expect(parseSubject(`mcollective.node.${Array(62).fill("a").join(".")}`).ok).toBe(true);
    expect(parseSubject(`mcollective.node.${Array(63).fill("a").join(".")}`).ok).toBe(false);
    expect(() => nodeSubject("mcollective", Array(63).fill("a").join("."))).toThrow(/64 tokens/);
    expect(() => broadcastSubject("$SYS", "rpcutil")).toThrow(/reserved/);
  });
});
