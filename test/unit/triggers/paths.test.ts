import { describe, expect, it } from "vitest";
import { lookupPath, parsePath } from "../../../lib/triggers/paths.ts";

describe("payload paths", () => {
  it("parses dotted keys and array indexes", () => {
    expect(parsePath("commits[0].id")).toEqual([{ key: "commits" }, { index: 0 }, { key: "id" }]);
    expect(parsePath("matrix[1][2]")).toEqual([{ key: "matrix" }, { index: 1 }, { index: 2 }]);
    expect(parsePath("x-github.full_name")).toEqual([{ key: "x-github" }, { key: "full_name" }]);
  });

  it("refuses what is not a path", () => {
    for (const text of ["", ".a", "a.", "a..b", "[0]", "a[x]", "a[0]b", "a]"])
      expect(parsePath(text)).toBeUndefined();
  });

  it("looks values up through own properties only", () => {
    const payload = JSON.parse('{"commits":[{"id":"abc"}],"__proto__":{"polluted":1}}');
    expect(lookupPath(payload, parsePath("commits[0].id") ?? [])).toBe("abc");
    expect(lookupPath(payload, parsePath("commits[1].id") ?? [])).toBeUndefined();
    expect(lookupPath(payload, parsePath("commits.id") ?? [])).toBeUndefined();
    expect(lookupPath(payload, parsePath("__proto__.polluted") ?? [])).toBe(1);
    expect(lookupPath({}, parsePath("constructor") ?? [])).toBeUndefined();
    expect(lookupPath({ a: "text" }, parsePath("a.length") ?? [])).toBeUndefined();
  });
});
