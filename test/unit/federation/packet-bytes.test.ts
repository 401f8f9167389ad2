import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringMember, topLevelMembers } from "../../../lib/federation/packet-bytes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DATA = encoder.encode("data");

function span(text: string): string | undefined {
  const bytes = encoder.encode(text);
  const members = topLevelMembers(bytes);
  const found = members === undefined ? undefined : stringMember(bytes, members, DATA);
  return found === undefined ? undefined : decoder.decode(bytes.subarray(found.start, found.end));
}

describe("topLevelMembers and stringMember", () => {
  it("finds the raw contents of the top-level member, escapes and all", () => {
    expect(span('{"data":"abc"}')).toBe("abc");
    expect(span(' { "x" : {"data":"inner"} , "data" : "a\\"b\\\\" } ')).toBe('a\\"b\\\\');
    expect(span('{"headers":{"a":[1,{"b":"}"}]},"data":"d","z":null}')).toBe("d");
  });

  it("gives nothing for other shapes", () => {
    for (const text of [
      "",
      "[]",
      "{}",
      '{"headers":{"data":"nested"}}',
      '{"data":5}',
      '{"data":"a","data":"b"}',
      '{"data":"a"',
      '{"data":"a"} trailing',
      '{"data" "a"}',
      '{"data":"unterminated}',
      '{"a":1,}',
    ]) {
      expect(span(text), text).toBeUndefined();
    }
  });

  it("agrees with JSON.stringify for any data string and layout", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme" }),
        fc.dictionary(
          fc.string().filter((k) => k !== "data"),
          fc.jsonValue(),
        ),
        fc.constantFrom(undefined, 1, 2, "\t"),
        (data, others, indent) => {
          const text = JSON.stringify({ ...others, data }, null, indent);
          expect(span(text)).toBe(JSON.stringify(data).slice(1, -1));
        },
      ),
    );
  });
});
