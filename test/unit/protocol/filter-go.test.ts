// go-choria's server-side filter semantics, row by row (the rows and the Go functions they come from are
// in go-filter-cases.ts), and the RE2 regular expressions every filter regex is checked and run with.
import { describe, expect, it } from "vitest";
import {
  type Filter,
  lookupFact,
  matchFilter,
  type NodeInventory,
  normaliseFilter,
  parseFactFilterString,
  validateFilter,
} from "../../../lib/protocol/filter.ts";
import { compileRe2, MAX_REGEX_LENGTH } from "../../../lib/protocol/re2.ts";
import {
  AGENT_CASES,
  CLASS_CASES,
  COMPOUND_CASES,
  FACT_CASES,
  GO_AGENTS,
  GO_CLASSES,
  GO_FACTS,
  GO_IDENTITY,
  IDENTITY_CASES,
  PARSE_CASES,
} from "./go-filter-cases.ts";

const node: NodeInventory = {
  identity: GO_IDENTITY,
  facts: GO_FACTS,
  classes: GO_CLASSES,
  agents: GO_AGENTS,
};
const match = (filter: Partial<Filter>) => matchFilter(normaliseFilter(filter), node);

describe("go-choria filter semantics", () => {
  it.each(FACT_CASES)("fact %s %s %j → %s", (fact, operator, value, expected) => {
    expect(match({ fact: [{ fact, operator, value }] })).toBe(expected);
  });

  it.each(IDENTITY_CASES)("identity %j → %s", (identity, expected) => {
    expect(match({ identity })).toBe(expected);
  });

  it.each(CLASS_CASES)("class %j → %s", (cf_class, expected) => {
    expect(match({ cf_class })).toBe(expected);
  });

  it.each(AGENT_CASES)("agent %j → %s", (agent, expected) => {
    expect(match({ agent })).toBe(expected);
  });

  it.each(COMPOUND_CASES)("compound %j → %s", (exprs, expected) => {
    expect(match({ compound: exprs.map((expr) => [{ expr }]) })).toBe(expected);
  });

  it.each(PARSE_CASES)("parses %j", (text, expected) => {
    const parsed = parseFactFilterString(text);
    expect(parsed && [parsed.fact, parsed.operator, parsed.value]).toEqual(expected);
  });

  it("finds facts by gjson path (what rpcutil#get_fact and fact() return)", () => {
    expect(lookupFact(GO_FACTS, "disks.#")).toBe(2);
    expect(lookupFact(GO_FACTS, "disks.#.size")).toEqual([100, 200]);
    expect(lookupFact(GO_FACTS, "dotted\\.key")).toBe("flat");
    expect(lookupFact(GO_FACTS, "dotted.key")).toBeUndefined();
    expect(lookupFact(GO_FACTS, "constructor")).toBeUndefined();
    expect(lookupFact(GO_FACTS, "disks.-1")).toBeUndefined();
    // gjson queries, pipes and modifiers are not supported: nothing is found
    expect(lookupFact(GO_FACTS, "disks.#(size==100).size")).toBeUndefined();
    expect(lookupFact(GO_FACTS, "os|family")).toBeUndefined();
    expect(lookupFact(GO_FACTS, "@this")).toBeUndefined();
  });
});

describe("filter regular expressions are RE2", () => {
  // The pattern that kept a node busy for 14 s on JavaScript's backtracking engine is valid RE2, so it is
  // accepted and run by the RE2 engine (linear in the input; test/bench/filters.ts times it).
  const pathological = "/^(?:[a-z0-9.]|[a-z0-9.]){22}!/";

  it("accepts the pathological identity regex and evaluates it with RE2", () => {
    const filter = normaliseFilter({ identity: [pathological] });
    expect(validateFilter(filter).ok).toBe(true);
    const identities = [
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "web1.example.net!",
      "abcdefghij0123456789.a!",
    ];
    const matched = identities.filter((identity) => matchFilter(filter, { ...node, identity }));
    expect(matched).toEqual(["abcdefghij0123456789.a!"]);
  });

  it("runs on RE2, not JavaScript's engine: Go-only syntax works", () => {
    expect(match({ identity: ["/^web1(?i)\\.EXAMPLE\\.NET\\z/"] })).toBe(true);
    expect(match({ identity: ["/^[[:alnum:]]+\\./"] })).toBe(true);
    expect(match({ identity: ["/^\\pL+\\d/"] })).toBe(true);
    expect(match({ identity: ["/^\\Qweb1.example\\E/"] })).toBe(true);
  });

  it.each([
    ["identity", { identity: ["/(a)\\1/"] }, "identity.0", /invalid escape sequence/],
    ["identity", { identity: ["ok", "/web(?=1)/"] }, "identity.1", /unsupported Perl syntax/],
    ["identity", { identity: ["/(?<=w)eb/"] }, "identity.0", /RE2/],
    ["cf_class", { cf_class: ["/(?!x)/"] }, "cf_class.0", /unsupported Perl syntax/],
    ["agent", { agent: ["/a{1001}/"] }, "agent.0", /invalid repeat count/],
    ["agent", { agent: ["/*/"] }, "agent.0", /missing argument/],
    ["fact", { fact: [{ fact: "a", operator: "=~" as const, value: "/(x)\\1/" }] }, "fact.0.value", /RE2/],
    ["compound", { compound: [[{ expr: "fact('a') matches '(?=x)'" }]] }, "compound.0.0.expr", /\(\?=/],
    ["compound", { compound: [[{ expr: "with('/(a)\\\\1/')" }]] }, "compound.0.0.expr", /RE2/],
    ["compound", { compound: [[{ expr: "with('country=~/(?!x)/')" }]] }, "compound.0.0.expr", /RE2/],
    ["size", { identity: [`/${"a".repeat(MAX_REGEX_LENGTH + 1)}/`] }, "identity.0", /longer than/],
    ["size", { identity: ["/(?:abcdefgh){900}/"] }, "identity.0", /too large/],
  ])("refuses a non-RE2 %s regex", (_kind, filter, field, reason) => {
    const checked = validateFilter(normaliseFilter(filter));
    expect(checked).toMatchObject({ ok: false, error: { layer: "filter", code: "invalid_field", field } });
    if (!checked.ok) expect(checked.error.message).toMatch(reason);
    // and a node that receives it anyway matches nothing with it
    expect(match(filter)).toBe(false);
  });

  it("compiles what RE2 compiles and names what it refuses", () => {
    expect(compileRe2("^web\\d+$").ok).toBe(true);
    expect(compileRe2("(?P<n>a)(?<m>b)").ok).toBe(true);
    expect(compileRe2("(a)\\1")).toEqual({ ok: false, reason: "invalid escape sequence: `\\1`" });
  });
});
