// The base64 decoder against a reference built from the rule it implements: Go's StdEncoding, padding
// required, CR and LF skipped, nothing else tolerated.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBase64, decodeBase64Text, encodeBase64, fromUtf8 } from "../../../lib/protocol/base64.ts";

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function reference(text: string): Uint8Array | undefined {
  const clean = text.replace(/[\r\n]/g, "");
  return STD_BASE64.test(clean) ? new Uint8Array(Buffer.from(clean, "base64")) : undefined;
}

describe("decodeBase64", () => {
  it("reads back whatever encodeBase64 wrote, also wrapped in lines", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 80 }), (bytes, width) => {
        const text = encodeBase64(bytes);
        expect(decodeBase64(text)).toEqual(bytes);
        const wrapped = text.replace(new RegExp(`(.{${width}})`, "g"), "$1\r\n");
        expect(decodeBase64(wrapped)).toEqual(bytes);
      }),
    );
  });

  it("accepts and refuses exactly what the reference does", () => {
    const character = fc.constantFrom(..."AZaz09+/=-_ \r\n\u00e9\u0100!".split(""), "Q", "w", "g", "A");
    fc.assert(
      fc.property(fc.array(character, { maxLength: 24 }), (chars) => {
        const text = chars.join("");
        expect(decodeBase64(text)).toEqual(reference(text));
      }),
      { numRuns: 20_000 },
    );
  });

  it("refuses padding anywhere but the end, and more than two", () => {
    for (const text of ["QQ==QUJD", "Q===", "====", "QUJD=", "QQ=A", "Q=Q=", "=QUJ"])
      expect(decodeBase64(text), text).toBeUndefined();
    expect(decodeBase64("")).toEqual(new Uint8Array(0));
    expect(decodeBase64("QUI=")).toEqual(Uint8Array.of(0x41, 0x42));
  });
});

describe("decodeBase64Text", () => {
  it("gives what decodeBase64 and the strict UTF-8 decoder give, refusals included", () => {
    const character = fc.constantFrom(
      ..."AZaz09+/=-_ \t\f\r\n\u00e9!".split(""),
      "Q",
      "w",
      "g",
      "7",
      "8",
      "/",
    );
    const wellFormed = fc
      .tuple(fc.string({ unit: "binary", maxLength: 40 }), fc.integer({ min: 0, max: 70 }))
      .map(([text, width]) => {
        const encoded = encodeBase64(new TextEncoder().encode(text));
        return width === 0 ? encoded : encoded.replace(new RegExp(`(.{${width}})`, "g"), "$1\n");
      });
    const bytes = fc.uint8Array({ maxLength: 30 }).map(encodeBase64);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(character, { maxLength: 24 }).map((c) => c.join("")),
          wellFormed,
          bytes,
        ),
        (text) => {
          const reference = decodeBase64(text);
          expect(decodeBase64Text(text)).toBe(reference === undefined ? undefined : fromUtf8(reference));
        },
      ),
      { numRuns: 20_000 },
    );
  });
});
