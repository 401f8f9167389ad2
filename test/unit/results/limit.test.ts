import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { limitSize, limitTargets, parseLimit, uniqueTargets } from "../../../lib/results/limit.ts";

const nodes = (n: number) => Array.from({ length: n }, (_, i) => `node${i}`);

describe("parseLimit", () => {
  it("reads counts and percentages as choria req --limit does", () => {
    expect(parseLimit(10)).toEqual({ kind: "count", count: 10 });
    expect(parseLimit("10")).toEqual({ kind: "count", count: 10 });
    expect(parseLimit("25%")).toEqual({ kind: "percent", percent: 25 });
    expect(parseLimit("100%")).toEqual({ kind: "percent", percent: 100 });
  });

  it("refuses zero, negatives, fractions, over 100% and anything else", () => {
    for (const bad of [0, "0", "0%", -1, "-1", 1.5, "1.5", "101%", "%", "10 %", "ten", ""]) {
      expect(parseLimit(bad), String(bad)).toBeUndefined();
    }
  });
});

describe("limitTargets", () => {
  it("keeps everything without a limit", () => {
    expect(limitTargets(nodes(5), undefined)).toEqual(nodes(5));
  });

  it("keeps the first N in discovery order by default", () => {
    expect(limitTargets(nodes(5), { kind: "count", count: 2 })).toEqual(["node0", "node1"]);
    expect(limitTargets(nodes(3), { kind: "count", count: 10 })).toEqual(nodes(3));
  });

  it("rounds a percentage down, as go-choria does, which may leave nobody", () => {
    expect(limitSize({ kind: "percent", percent: 50 }, 5)).toBe(2);
    expect(limitSize({ kind: "percent", percent: 10 }, 5)).toBe(0);
    expect(limitTargets(nodes(5), { kind: "percent", percent: 10 })).toEqual([]);
    expect(limitTargets(nodes(1000), { kind: "percent", percent: 10 })).toHaveLength(100);
  });

  it("random draws a sample of distinct targets of the right size, reproducible with a pinned source", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1, max: 80 }),
        fc.integer(),
        (n, count, seed) => {
          let state = seed >>> 0;
          const random = () => {
            state = (state * 1664525 + 1013904223) >>> 0;
            return state / 2 ** 32;
          };
          const picked = limitTargets(nodes(n), { kind: "count", count }, "random", random);
          expect(picked).toHaveLength(Math.min(n, count));
          expect(new Set(picked).size).toBe(picked.length);
          for (const p of picked) expect(nodes(n)).toContain(p);
        },
      ),
    );
    const sequence = [0.9, 0.1, 0.5];
    let i = 0;
    const pinned = () => sequence[i++ % sequence.length]!;
    expect(limitTargets(nodes(4), { kind: "count", count: 2 }, "random", pinned)).toEqual(["node3", "node1"]);
  });

  it("random over every target still reaches each exactly once", () => {
    expect(limitTargets(nodes(4), undefined, "random").sort()).toEqual(nodes(4));
  });
});

describe("uniqueTargets", () => {
  it("drops repeats and keeps first-seen order", () => {
    expect(uniqueTargets(["b", "a", "b", "c", "a"])).toEqual(["b", "a", "c"]);
  });
});
