import { describe, expect, it } from "vitest";
import { constantTimeEqual } from "../../../lib/security/compare.ts";
import { LruCache } from "../../../lib/security/lru.ts";

describe("constantTimeEqual", () => {
  it("is true only for identical strings", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("", "")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "ab")).toBe(false);
    expect(constantTimeEqual("ab", "abc")).toBe(false);
    expect(constantTimeEqual("", "a")).toBe(false);
  });

  it("tells apart strings whose UTF-8 encodings coincide (lone surrogates both encode as U+FFFD)", () => {
    expect(constantTimeEqual("a\ud800", "a\udc00")).toBe(false);
    expect(constantTimeEqual("a\ud800", "a\ud800")).toBe(true);
  });

  it("compares strings by UTF-8 bytes", () => {
    expect(constantTimeEqual("caf\u00e9", "cafe\u0301")).toBe(false);
    expect(constantTimeEqual("caf\u00e9", new Uint8Array([0x63, 0x61, 0x66, 0xc3, 0xa9]))).toBe(true);
  });

  it("compares bytes, including a difference only in the last byte or only in length", () => {
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3, 0]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([0]), new Uint8Array([]))).toBe(false);
  });
});

describe("LruCache", () => {
  it("evicts the least recently used entry beyond capacity", () => {
    const cache = new LruCache<string, number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.get("a")).toBe(1);
    cache.set("c", 3);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(1);
    expect(cache.get("c")).toBe(3);
    expect(cache.size).toBe(2);
  });

  it("refuses a capacity below one", () => {
    expect(() => new LruCache(0)).toThrow(RangeError);
  });
});
