import { describe, expect, it } from "vitest";
import { parseJson } from "../../../lib/protocol/json.ts";
import { jsonDepthExceeds, MAX_JSON_DEPTH } from "../../../lib/protocol/json-depth.ts";
import { decodeTransport } from "../../../lib/protocol/transport.ts";

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

describe("every NATS decode is held to the bound (issue 12)", () => {
  it("parseJson refuses a document nested deeper than 64 levels as too_deep, before parsing it", () => {
    const refused = parseJson("transport", new TextEncoder().encode(`{"h":${nested(5000)}}`));
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error.code).toBe("too_deep");
    expect(parseJson("transport", `{"h":${nested(63)}}`).ok).toBe(true);
    expect(decodeTransport(`{"data":"","headers":{"x":${nested(100)}}}`)).toMatchObject({
      ok: false,
      error: { code: "too_deep", layer: "transport" },
    });
  });

  it("skips long strings whole and still finds what follows them", () => {
    const data = "A".repeat(1_000_000);
    expect(jsonDepthExceeds(`{"data":"${data}","h":${nested(10)}}`, 11)).toBe(false);
    expect(jsonDepthExceeds(`{"data":"${data}\\\\","h":${nested(70)}}`)).toBe(true);
    expect(jsonDepthExceeds(new TextEncoder().encode(`{"data":"${data}","h":${nested(70)}}`))).toBe(true);
    // A string that never closes hides the rest, as it would from the parser, which then refuses it.
    expect(jsonDepthExceeds(`{"data":"${nested(70)}`)).toBe(false);
  });
});
