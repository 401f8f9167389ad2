import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { replyCollective, targetCollective } from "../../../lib/federation/subject-shapes.ts";
import { parseSubject } from "../../../lib/protocol/subjects.ts";

// Tokens near every limit parseSubject sets: unsafe characters, empty, 128 and 129 characters long.
const token = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      "mcollective",
      "node",
      "broadcast",
      "agent",
      "service",
      "reply",
      "choria",
      "federation",
    ),
  },
  fc.stringMatching(/^[a-z0-9$*>. \t\u00e9-]{0,6}$/),
  fc.constantFrom("", "a".repeat(128), "a".repeat(129), "x".repeat(200)),
);
const subject = fc.oneof(
  fc.array(token, { minLength: 1, maxLength: 8 }).map((tokens) => tokens.join(".")),
  fc
    .tuple(
      token,
      fc.constantFrom("node", "broadcast.agent", "broadcast.service", "reply.h"),
      fc.array(token, { minLength: 0, maxLength: 70 }),
    )
    .map(([collective, middle, rest]) => [collective, middle, ...rest].join(".")),
);

function parsed(text: string, kinds: string[]): string | undefined {
  const result = parseSubject(text);
  return result.ok && kinds.includes(result.value.kind) && "collective" in result.value
    ? result.value.collective
    : undefined;
}

describe("subject shapes", () => {
  it("accept only what parseSubject accepts as that kind, with the same collective", () => {
    let accepted = 0;
    fc.assert(
      fc.property(subject, (text) => {
        const target = targetCollective(text);
        if (target !== undefined) expect(target).toBe(parsed(text, ["broadcast", "node"]));
        const reply = replyCollective(text);
        if (reply !== undefined) expect(reply).toBe(parsed(text, ["reply"]));
        if (target !== undefined || reply !== undefined) accepted++;
      }),
      { numRuns: 20_000 },
    );
    expect(accepted).toBeGreaterThan(500);
  });

  it("accept the subjects Choria writes", () => {
    expect(targetCollective("mcollective.broadcast.agent.rpcutil")).toBe("mcollective");
    expect(targetCollective("mcollective.node.node1.example.net")).toBe("mcollective");
    expect(
      replyCollective("mcollective.reply.37bdf08389145a56c13096c178802d3b.9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e"),
    ).toBe("mcollective");
    expect(replyCollective("mcollective.reply.37bdf08389145a56c13096c178802d3b.4242.1")).toBe("mcollective");
  });

  it("leave the edges of the limits to parseSubject", () => {
    const identity = Array.from({ length: 62 }, () => "a").join(".");
    expect(targetCollective(`c.node.${identity}`)).toBe("c");
    expect(targetCollective(`c.node.${identity}.a`)).toBeUndefined();
    expect(targetCollective(`c.node.${"a".repeat(253)}`)).toBe("c");
    expect(targetCollective(`c.node.${"a".repeat(254)}`)).toBeUndefined();
    expect(targetCollective("$SYS.node.x")).toBeUndefined();
    expect(targetCollective("mcollective.broadcast.service.x")).toBeUndefined();
  });
});
