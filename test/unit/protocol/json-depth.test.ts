import { describe, expect, it } from "vitest";
import { jsonDepthExceeds, MAX_JSON_DEPTH } from "../../../lib/protocol/json-depth.ts";

const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("jsonDepthExceeds", () => {
  it("counts objects and arrays inside each other, the outermost as 1", () => {
    expect(MAX_JSON_DEPTH).toBe(64);
    expect(jsonDepthExceeds(nested(64))).toBe(false);
    expect(jsonDepthExceeds(nested(65))).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(jsonDepthExceeds('{"a":{"b":[1,{"c":{}}]}}', 4)).toBe(true);
    // Siblings do not add up: depth is how far in, not how many.
    expect(jsonDepthExceeds(`[${Array(1000).fill("[[]]").join(",")}]`, 3)).toBe(false);
  });

  it("ignores brackets inside strings, escaped quotes included", () => {
    expect(jsonDepthExceeds(`{"s":"${"[".repeat(100)}"}`)).toBe(false);
    expect(jsonDepthExceeds(`{"s":"a\\"${"{".repeat(100)}\\\\"}`)).toBe(false);
    expect(jsonDepthExceeds(`{"s":"\\\\"${",[".repeat(100)}`)).toBe(true);
  });

  it("reads UTF-8 bytes as it reads text", () => {
    const text = `{"ü":"€${"[".repeat(80)}","x":${nested(70)}}`;
    expect(jsonDepthExceeds(new TextEncoder().encode(text))).toBe(true);
    expect(jsonDepthExceeds(text)).toBe(true);
    expect(jsonDepthExceeds(new TextEncoder().encode(`{"€":${nested(60)}}`))).toBe(false);
  });

  it("scans 5,000 levels without recursion", () => {
    expect(jsonDepthExceeds(nested(5000))).toBe(true);
    expect(jsonDepthExceeds(nested(100_000), 200_000)).toBe(false);
  });
});
