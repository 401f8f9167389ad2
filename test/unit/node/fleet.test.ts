import { describe, expect, it } from "vitest";
import { generateFleet, parseFleet } from "../../../lib/node/fleet.ts";

describe("generateFleet", () => {
  it("is deterministic for a seed and gives node N the same facts whatever the offset", () => {
    const whole = generateFleet({ count: 20, seed: 9 });
    expect(generateFleet({ count: 20, seed: 9 })).toEqual(whole);
    expect(generateFleet({ count: 5, seed: 9, offset: 15 })).toEqual(whole.slice(15));
    expect(generateFleet({ count: 20, seed: 10 })).not.toEqual(whole);
  });

  it("gives every node a unique identity and varied facts, classes and agents", () => {
    const fleet = generateFleet({ count: 300, collective: "eu" });
    expect(new Set(fleet.map((n) => n.identity)).size).toBe(300);
    expect(fleet.every((n) => n.collective === "eu" && n.identity.endsWith(".eu.example.net"))).toBe(true);
    expect(new Set(fleet.map((n) => n.facts.country)).size).toBeGreaterThan(2);
    expect(new Set(fleet.map((n) => n.facts.role))).toEqual(new Set(["web", "db", "cache"]));
    expect(fleet.some((n) => !n.agents.includes("demo"))).toBe(true);
    expect(fleet.every((n) => n.agents.includes("rpcutil") && n.agents.includes("discovery"))).toBe(true);
  });
});

describe("parseFleet", () => {
  it("reads identities with defaults for what is left out", () => {
    const parsed = parseFleet('[{"identity":"a.example.net","facts":{"os":"linux"}}]');
    expect(parsed).toEqual({
      ok: true,
      fleet: [
        {
          identity: "a.example.net",
          collective: "mcollective",
          facts: { os: "linux" },
          classes: [],
          agents: ["rpcutil", "discovery"],
        },
      ],
    });
  });

  it("names the entry and field of a mistake, and refuses duplicates", () => {
    expect(parseFleet('[{"identity":"a"},{"identity":7}]')).toMatchObject({
      ok: false,
      error: expect.stringContaining("1.identity"),
    });
    expect(parseFleet("[]")).toMatchObject({ ok: false });
    expect(parseFleet("{")).toMatchObject({ ok: false, error: expect.stringContaining("not JSON") });
    expect(parseFleet('[{"identity":"a"},{"identity":"a"}]')).toMatchObject({
      ok: false,
      error: expect.stringContaining("duplicate"),
    });
  });
});
