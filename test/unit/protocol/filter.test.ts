import { describe, expect, it } from "vitest";
import {
  compileExpression,
  decodeFilter,
  emptyFilter,
  type Filter,
  filterSchema,
  isEmptyFilter,
  lookupFact,
  matchFilter,
  type NodeInventory,
  normaliseFilter,
  parseFactFilterString,
  validateFilter,
} from "../../../lib/protocol/filter.ts";

const web1: NodeInventory = {
  identity: "web1.example.net",
  facts: {
    country: "mt",
    release: "11",
    memory_gb: 16,
    load: 0.75,
    virtual: true,
    physical: false,
    os: { family: "Debian", release: { major: "12" } },
    disks: [{ size: 100 }],
    "dotted.key": "flat",
    nothing: null,
  },
  classes: ["base", "roles::web", "nginx"],
  agents: ["rpcutil", "discovery", "demo"],
};

const match = (filter: Partial<Filter>, node: NodeInventory = web1) =>
  matchFilter(normaliseFilter(filter), node);
const fact = (name: string, operator: Filter["fact"][number]["operator"], value: string) =>
  match({ fact: [{ fact: name, operator, value }] });

describe("filter shape", () => {
  it("the empty filter has Go's five arrays and matches every node", () => {
    expect(JSON.stringify(emptyFilter())).toBe(
      '{"fact":[],"cf_class":[],"agent":[],"identity":[],"compound":[]}',
    );
    expect(isEmptyFilter(emptyFilter())).toBe(true);
    expect(match({})).toBe(true);
    expect(match({}, { identity: "x", facts: {}, classes: [], agents: [] })).toBe(true);
  });

  it("normaliseFilter fills the missing arrays in Go's order and sorts compound map keys", () => {
    const normal = normaliseFilter({ identity: ["a"], compound: [[{ z: 1, expr: "true" }]] });
    expect(JSON.stringify(normal)).toBe(
      '{"fact":[],"cf_class":[],"agent":[],"identity":["a"],"compound":[[{"expr":"true","z":1}]]}',
    );
    expect(isEmptyFilter(normal)).toBe(false);
  });

  it("the schema names the offending field", () => {
    const bad = filterSchema.safeParse({ fact: [{ fact: "", operator: "==", value: "x" }] });
    expect(bad.success).toBe(false);
    expect(decodeFilter({ fact: [{ fact: "a", operator: "=", value: "x" }] })).toMatchObject({
      ok: false,
      error: { layer: "filter", code: "invalid_field", field: "fact.0.operator" },
    });
    expect(decodeFilter({ compound: [[1]] })).toMatchObject({ ok: false, error: { field: "compound.0.0" } });
    expect(decodeFilter({ agent: ["rpcutil"] })).toMatchObject({
      ok: true,
      value: { agent: ["rpcutil"], fact: [] },
    });
  });
});

describe("identity (OR)", () => {
  it.each([
    [["web1.example.net"], true],
    [["web2.example.net"], false],
    [["web2.example.net", "web1.example.net"], true],
    [["/^web\\d+\\./"], true],
    [["/example/"], true],
    [["/^db/"], false],
    [["web1"], false],
    [["/(?i)WEB1/"], true],
    [["/[/"], false],
    [["/[/", "web1.example.net"], true],
  ])("%j → %s", (identity, expected) => {
    expect(match({ identity })).toBe(expected);
  });
});

describe("classes and agents (AND)", () => {
  it.each([
    [["nginx"], true],
    [["nginx", "base"], true],
    [["nginx", "postgresql"], false],
    [["/^roles::/"], true],
    [["/^roles::db$/"], false],
    [["roles"], false],
    [["/(/"], false],
  ])("classes %j → %s", (cf_class, expected) => {
    expect(match({ cf_class })).toBe(expected);
  });

  it.each([
    [["rpcutil"], true],
    [["rpcutil", "demo"], true],
    [["rpcutil", "puppet"], false],
    [["/^disc/"], true],
    [["/pupp/"], false],
  ])("agents %j → %s", (agent, expected) => {
    expect(match({ agent })).toBe(expected);
  });
});

describe("facts (AND)", () => {
  it.each([
    ["country", "==", "mt", true],
    ["country", "==", "MT", true], // Go compares strings with strings.EqualFold
    ["country", "!=", "mt", false],
    ["country", "!=", "de", true],
    ["country", "=~", "^m", true],
    ["country", "=~", "/^m/", true],
    ["country", "=~", "/^d/", false],
    ["country", ">", "de", true],
    ["country", "<", "de", false],
    ["country", ">=", "mt", true],
    ["country", "<=", "ms", false],
    ["memory_gb", "==", "16", true],
    ["memory_gb", "==", "16.0", true],
    ["memory_gb", ">", "8", true],
    ["memory_gb", ">", "16", false],
    ["memory_gb", ">=", "16", true],
    ["memory_gb", "<", "100", true],
    ["memory_gb", "<=", "15.5", false],
    ["memory_gb", "!=", "16", false],
    ["memory_gb", "=~", "^1", true],
    ["load", "<", "1", true],
    ["load", "==", "0.75", true],
    // "11" is a string fact, so go-choria compares it as text: "11" < "9".
    ["release", "<", "9", true],
    ["release", ">", "9", false],
    ["release", "==", "11", true],
    ["os.family", "==", "Debian", true],
    ["os.release.major", ">=", "12", true],
    ["disks.0.size", "==", "100", true],
    ["dotted.key", "==", "flat", false], // a gjson path; the key is found as dotted\.key
    ["dotted\\.key", "==", "flat", true],
    ["os", "==", "Debian", false],
    ["disks", "!=", "x", false],
    ["nothing", "!=", "x", false],
    ["missing", "!=", "x", false],
    ["os.missing.deeper", "==", "x", false],
    ["virtual", "==", "true", true],
    ["virtual", "==", "1", true],
    ["virtual", "==", "false", false],
    ["virtual", "!=", "false", true],
    ["physical", "==", "false", true],
    ["physical", "==", "true", false],
    ["physical", "!=", "true", false], // go-choria's neMatch on a false fact repeats ==
    ["virtual", ">", "false", false],
    ["virtual", "=~", "^tr", false], // a boolean fact reads the =~ value as a bool, not a regex
    ["country", "=~", "/[/", false],
  ] as const)("%s %s %s → %s", (name, operator, value, expected) => {
    expect(fact(name, operator, value)).toBe(expected);
  });

  it("requires every fact filter to match", () => {
    const both = [
      { fact: "country", operator: "==" as const, value: "mt" },
      { fact: "memory_gb", operator: ">=" as const, value: "8" },
    ];
    expect(match({ fact: both })).toBe(true);
    expect(match({ fact: [...both, { fact: "country", operator: "==", value: "de" }] })).toBe(false);
  });

  it("looks facts up by gjson path, where a dot in a key is escaped", () => {
    expect(lookupFact(web1.facts, "os.family")).toBe("Debian");
    expect(lookupFact(web1.facts, "dotted.key")).toBeUndefined();
    expect(lookupFact(web1.facts, "dotted\\.key")).toBe("flat");
    expect(lookupFact(web1.facts, "disks.0.size")).toBe(100);
    expect(lookupFact(web1.facts, "os.family.x")).toBeUndefined();
    expect(lookupFact(web1.facts, "constructor")).toBeUndefined();
  });
});

describe("combined filters", () => {
  it("ANDs the five kinds", () => {
    const all: Partial<Filter> = {
      identity: ["/^web/"],
      cf_class: ["nginx"],
      agent: ["rpcutil"],
      fact: [{ fact: "country", operator: "==", value: "mt" }],
      compound: [[{ expr: "with('demo')" }]],
    };
    expect(match(all)).toBe(true);
    for (const spoil of [
      { identity: ["db1"] },
      { cf_class: ["postgresql"] },
      { agent: ["puppet"] },
      { fact: [{ fact: "country", operator: "==" as const, value: "de" }] },
      { compound: [[{ expr: "with('puppet')" }]] },
    ]) {
      expect(match({ ...all, ...spoil })).toBe(false);
    }
  });
});

describe("compound expressions (supported subset)", () => {
  it.each([
    ["with('nginx')", true],
    ["with('puppet')", false],
    ["with('demo')", true],
    ["with('/^roles::/')", true],
    ["with('country=mt')", true],
    ["with('country=de')", false],
    ["with('memory_gb>=8')", true],
    ["with('memory_gb => 32')", false],
    ["with('country=/^m/')", true],
    ["with('os.family==Debian')", true],
    ["with('nginx') and with('country=mt')", true],
    ["with('nginx') && with('country=de')", false],
    ["with('puppet') or with('country=mt')", true],
    ["with('puppet') || with('nginx')", true],
    ["not with('puppet')", true],
    ["!with('nginx')", false],
    ["not (with('puppet') or with('mysql'))", true],
    ["(with('nginx') or with('puppet')) and not with('country=de')", true],
    ["fact('country') == 'mt'", true],
    ['fact("country") != "mt"', false],
    ["fact('memory_gb') > 8", true],
    ["fact('memory_gb') <= 8", false],
    ["fact('load') < 1.5", true],
    ["fact('os.family') matches '^Deb'", true],
    ["fact('missing') == nil", true],
    ["fact('virtual') == true", true],
    ["'nginx' in classes", true],
    ["'puppet' in agents", false],
    ["include(agents, 'rpcutil')", true],
    ["include(classes, 'x')", false],
    ["fact('country') > 'a' and fact('country') < 'z'", true],
    ["true", true],
    ["false or true", true],
    ["fact('temp') > -5", false],
    ["'it\\'s' == \"it's\"", true],
    // type errors evaluate to no match instead of throwing
    ["fact('country') > 5", false],
    ["fact('missing') matches 'x'", false],
    ["not fact('country')", false],
    ["fact('country')", false],
    ["'x' in fact('country')", false],
    ["fact('os.family') matches '['", false],
  ])("%s → %s", (expr, expected) => {
    expect(match({ compound: [[{ expr }]] })).toBe(expected);
  });

  it("needs every compound group to match, each as Go's single {expr} map", () => {
    expect(match({ compound: [[{ expr: "with('nginx')" }], [{ expr: "with('demo')" }]] })).toBe(true);
    expect(match({ compound: [[{ expr: "with('nginx')" }], [{ expr: "with('puppet')" }]] })).toBe(false);
    expect(match({ compound: [[{ expr: "true" }, { expr: "true" }]] })).toBe(false);
    expect(match({ compound: [[{ query: "true" }]] })).toBe(false);
    expect(match({ compound: [[{ expr: 1 }]] })).toBe(false);
  });

  it.each([
    ["", /empty/],
    ["with('a'", /expected \)/],
    ["with('a', 'b')", /argument/],
    ["semver(fact('v'), '>= 1.0')", /unsupported name semver/],
    ["facts.os == 'x'", /unexpected input/],
    ["facts == 'x'", /unsupported name facts/],
    ["fact('a') + 1", /unexpected input/],
    ["with('a') with('b')", /unexpected with/],
    ["and", /unexpected and|unsupported name and/],
    ["'unterminated", /unexpected input/],
  ])("refuses %j at compile time", (expr, reason) => {
    const compiled = compileExpression(expr);
    expect(compiled.ok).toBe(false);
    if (!compiled.ok) expect(compiled.reason).toMatch(reason);
    expect(match({ compound: [[{ expr }]] })).toBe(false);
  });
});

describe("parseFactFilterString", () => {
  it.each([
    ["country=mt", { fact: "country", operator: "==", value: "mt" }],
    ["country==mt", { fact: "country", operator: "==", value: "mt" }],
    ["country = /^m/", { fact: "country", operator: "=~", value: "/^m/" }],
    ["memory=>4", { fact: "memory", operator: ">=", value: "4" }],
    ["memory=<4", { fact: "memory", operator: "<=", value: "4" }],
    ["memory<=4", { fact: "memory", operator: "<=", value: "4" }],
    ["memory > 4", { fact: "memory", operator: ">", value: "4" }],
    ["os.family!=RedHat", { fact: "os.family", operator: "!=", value: "RedHat" }],
    ["name=~^web", { fact: "name", operator: "=~", value: "^web" }],
  ])("%s", (text, expected) => {
    expect(parseFactFilterString(text)).toEqual(expected);
  });

  it("leaves class and agent names alone", () => {
    for (const text of ["nginx", "roles::web", "/^web/", "=x", "a="])
      expect(parseFactFilterString(text)).toBeUndefined();
  });
});

describe("validateFilter", () => {
  it("accepts a good filter", () => {
    const good = normaliseFilter({
      identity: ["/^web/", "db1"],
      cf_class: ["/x/"],
      fact: [{ fact: "a", operator: "=~", value: "/^b/" }],
      compound: [[{ expr: "with('x') and not with('y')" }]],
    });
    expect(validateFilter(good)).toEqual({ ok: true, value: good });
  });

  it.each([
    [{ identity: ["ok", "/[/"] }, "identity.1"],
    [{ cf_class: ["/(/"] }, "cf_class.0"],
    [{ agent: ["/*/"] }, "agent.0"],
    [{ fact: [{ fact: "a", operator: "=~" as const, value: "/[/" }] }, "fact.0.value"],
    [{ compound: [[{ expr: "semver('1', '2')" }]] }, "compound.0.0.expr"],
    [{ compound: [[{ expr: "true" }], [{ other: "x" }]] }, "compound.1"],
  ])("reports %j at %s", (filter, field) => {
    expect(validateFilter(normaliseFilter(filter))).toMatchObject({
      ok: false,
      error: { layer: "filter", code: "invalid_field", field },
    });
  });
});
