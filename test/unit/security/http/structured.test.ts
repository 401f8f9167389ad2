import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Dictionary,
  type InnerList,
  type Item,
  parseDictionary,
  serializeDictionary,
  Token,
} from "../../../../lib/security/http/structured.ts";

function parsed(text: string): Dictionary {
  const result = parseDictionary(text);
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

describe("RFC 8941 dictionaries", () => {
  it("parses a Signature-Input member: an inner list of strings with parameters, in order", () => {
    const value = parsed(
      'sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="k-1";alg="ed25519"',
    );
    const member = value.get("sig1") as InnerList;
    expect(member.items.map((item) => item.value)).toEqual(["@method", "@target-uri", "content-digest"]);
    expect([...member.params]).toEqual([
      ["created", 1618884473],
      ["keyid", "k-1"],
      ["alg", "ed25519"],
    ]);
  });

  it("parses byte sequences, tokens, booleans, decimals, bare keys and whitespace around members", () => {
    const value = parsed(" a=:AQID:,  b=tok/en:x ,c=?0, d=-1.5;q, e ");
    expect((value.get("a") as Item).value).toEqual(new Uint8Array([1, 2, 3]));
    expect((value.get("b") as Item).value).toEqual(new Token("tok/en:x"));
    expect((value.get("c") as Item).value).toBe(false);
    expect(value.get("d")).toEqual({ value: -1.5, params: new Map([["q", true]]) });
    expect(value.get("e")).toEqual({ value: true, params: new Map() });
  });

  it("accepts byte sequences without padding, as RFC 8941 asks", () => {
    expect((parsed("a=:AQI:").get("a") as Item).value).toEqual(new Uint8Array([1, 2]));
  });

  it("unescapes strings and keeps an empty inner list", () => {
    const value = parsed('a="say \\"hi\\" \\\\ bye", b=();created=1');
    expect((value.get("a") as Item).value).toBe('say "hi" \\ bye');
    expect(value.get("b")).toEqual({ items: [], params: new Map([["created", 1]]) });
  });

  it.each([
    ["an unterminated inner list", 'a=("x"'],
    ["an unterminated string", 'a="x'],
    ["a bad escape", 'a="\\n"'],
    ["a control character in a string", 'a="\u0001"'],
    ["a non-ASCII character in a string", 'a="caf\u00e9"'],
    ["an uppercase key", "A=1"],
    ["a key starting with a digit", "1a=1"],
    ["a trailing comma", "a=1,"],
    ["a missing comma", "a=1 b=2"],
    ["a repeated key", "a=1, a=2"],
    ["a repeated parameter", "a=1;x;x"],
    ["items in an inner list without a space", 'a=("x""y")'],
    ["an integer of 16 digits", "a=1234567890123456"],
    ["a decimal with 4 fraction digits", "a=1.2345"],
    ["a decimal without fraction digits", "a=1."],
    ["bad base64", "a=:***:"],
    ["an unterminated byte sequence", "a=:AQID"],
    ["a bad boolean", "a=?2"],
    ["an empty item", "a="],
    ["a nested inner list", "a=((1))"],
  ])("refuses %s", (_what, text) => {
    const result = parseDictionary(text);
    expect(result.ok).toBe(false);
  });

  it("never echoes the field's content in an error", () => {
    const result = parseDictionary('sig1=("@method");keyid="secret-looking value');
    expect(result.ok || result.error).not.toContain("secret-looking");
  });

  it("round-trips what it serialises", () => {
    const key = fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,8}$/);
    const bare = fc.oneof(
      fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
      fc.stringMatching(/^[\x20-\x7e]{0,20}$/),
      fc.boolean(),
      fc.uint8Array({ maxLength: 40 }),
      fc.stringMatching(/^[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]{0,10}$/).map((t) => new Token(t)),
    );
    const params = fc
      .uniqueArray(fc.tuple(key, bare), { selector: ([k]) => k, maxLength: 3 })
      .map((p) => new Map(p));
    const item = fc.record({ value: bare, params });
    const member = fc.oneof(item, fc.record({ items: fc.array(item, { maxLength: 4 }), params }));
    const dictionary = fc
      .uniqueArray(fc.tuple(key, member), { selector: ([k]) => k, minLength: 1, maxLength: 4 })
      .map((entries) => new Map(entries) as Dictionary);
    fc.assert(
      fc.property(dictionary, (value) => {
        const text = serializeDictionary(value);
        const again = parseDictionary(text);
        expect(again.ok).toBe(true);
        expect(again.ok && serializeDictionary(again.value)).toBe(text);
      }),
    );
  });
});
