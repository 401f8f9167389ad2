import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Decoded } from "../../../lib/protocol/errors.ts";
import { validateTransport } from "../../../lib/protocol/transport.ts";
import { checkTransport } from "../../../lib/protocol/transport-check.ts";
import { fixtureText } from "./support.ts";

// A member left out of the generated object.
const ABSENT = Symbol("absent");

const anyJson = fc.jsonValue({ maxDepth: 2 });
// Lengths at the schemas' bounds (empty, a request id's 255 and one more) beside arbitrary text.
const edgeText = fc.oneof(
  fc.constantFrom("", "x", "a".repeat(255), "a".repeat(256), "mcollective.node.n1"),
  fc.string({ maxLength: 8 }),
);

/** Mostly the right shape; one time in `odds` any JSON value, as often left out. */
function maybe<T>(right: fc.Arbitrary<T>, odds: number): fc.Arbitrary<T | unknown> {
  return fc.oneof(
    { weight: odds, arbitrary: right },
    { weight: 1, arbitrary: anyJson },
    { weight: 1, arbitrary: fc.constant(ABSENT) },
  );
}

// Unknown members, `__proto__` among them: JSON.parse makes it an own member like any other.
const extras = fc.dictionary(
  fc.constantFrom("x", "custom", "__proto__", "constructor", "toString"),
  anyJson,
  {
    maxKeys: 2,
  },
);

/** An object of the given members in a generated order, built as JSON.parse builds one from the wire. */
function object(members: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.record(members), extras)
    .chain(([known, unknown]) => {
      const entries = [...Object.entries(known), ...Object.entries(unknown)].filter(
        ([, value]) => value !== ABSENT,
      );
      return fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length });
    })
    .map((entries) => JSON.parse(JSON.stringify(Object.fromEntries(entries))));
}

/** Packets of both dialects with one member in `odds` damaged or left out. */
function packets(odds: number): fc.Arbitrary<unknown> {
  const text = fc.oneof({ weight: odds, arbitrary: fc.string({ minLength: 1, maxLength: 8 }) }, edgeText);
  const hop = fc.oneof(
    { weight: odds, arbitrary: fc.array(text, { minLength: 2, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.array(maybe(text, odds), { maxLength: 4 }) },
    { weight: 1, arbitrary: anyJson },
  );
  const federation = object({
    req: maybe(text, odds),
    "reply-to": maybe(text, odds),
    target: maybe(fc.array(maybe(text, odds), { maxLength: 3 }), odds),
  });
  const headers = object({
    "reply-to": maybe(text, odds),
    mc_sender: maybe(text, odds),
    "seen-by": maybe(fc.array(fc.oneof(hop, text), { maxLength: 3 }), odds),
    federation: maybe(federation, odds),
  });
  return object({
    protocol: fc.oneof(
      { weight: odds, arbitrary: fc.constantFrom(ABSENT, "choria:transport:1") },
      fc.constantFrom("choria:transport:2", "io.choria.protocol.v2.transport", "", 1, null),
    ),
    data: maybe(text, odds),
    headers: maybe(headers, odds),
  });
}

const packet = fc.oneof(packets(40), packets(4), anyJson);

/** What a caller can see of an answer: the value as JSON, or the refusal's code, field and words. */
function seen(decoded: Decoded<unknown>) {
  return decoded.ok
    ? { ok: true, json: JSON.stringify(decoded.value) }
    : { ok: false, code: decoded.error.code, field: decoded.error.field, message: decoded.error.message };
}

describe("checkTransport", () => {
  it("answers every generated packet, valid or damaged, exactly as validateTransport does", () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(packet, (value) => {
        const expected = seen(validateTransport(value));
        expect(seen(checkTransport(value))).toEqual(expected);
        if (expected.ok) accepted++;
        else refused++;
      }),
      { numRuns: 10_000 },
    );
    // Both outcomes must be common, or the comparison says little.
    expect(accepted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it.each([
    "seed-federated-request-transport.json",
    "spec-1.2-request-transport.json",
    "spec-1.3-reply-transport.json",
    "spec-6.1-federated-request-transport.json",
  ])("accepts the fixture %s as validateTransport does", (name) => {
    const value = JSON.parse(fixtureText(name));
    const expected = seen(validateTransport(value));
    expect(expected.ok).toBe(true);
    expect(seen(checkTransport(value))).toEqual(expected);
  });

  it("accepts every step of the spec's federated round trip as validateTransport does", () => {
    const steps = JSON.parse(fixtureText("spec-6.4-federated-round-trip.json")).steps as {
      packet: unknown;
    }[];
    for (const step of steps)
      expect(seen(checkTransport(step.packet))).toEqual(seen(validateTransport(step.packet)));
  });

  it("returns a packet already in the schema's order as it is, and a copy of one that is not", () => {
    const headers = {
      "reply-to": "r",
      mc_sender: "n1",
      "seen-by": [["a", "n1", "b"]],
      federation: { req: "0123", "reply-to": "r", target: ["t"] },
      x: 1,
    };
    const packet = { protocol: "choria:transport:1", data: "e30=", headers, x: 1 };
    const same = checkTransport(packet);
    expect(same.ok && same.value).toBe(packet);
    const shuffled = { ...packet, headers: { mc_sender: "n1", "reply-to": "r" } };
    const copied = checkTransport(shuffled);
    expect(copied.ok && copied.value).not.toBe(shuffled);
    expect(JSON.stringify(copied.ok && copied.value.headers)).toBe('{"reply-to":"r","mc_sender":"n1"}');
  });
});
