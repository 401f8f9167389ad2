import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { utf8 } from "../../../lib/protocol/base64.ts";
import {
  callerId,
  callerIdHash,
  certnameFromCallerId,
  isRequestId,
  md5,
  md5Hex,
  newRequestId,
} from "../../../lib/protocol/ids.ts";

describe("md5", () => {
  // RFC 1321 appendix A.5 test suite.
  it.each([
    ["", "d41d8cd98f00b204e9800998ecf8427e"],
    ["a", "0cc175b9c0f1b6a831c399e269772661"],
    ["abc", "900150983cd24fb0d6963f7d28e17f72"],
    ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
    ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
    ["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"],
    [
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a",
    ],
  ])("md5(%j) is the RFC 1321 digest", (input, digest) => {
    expect(md5Hex(utf8(input))).toBe(digest);
  });

  it("returns 16 raw bytes", () => {
    expect(md5(utf8("abc"))).toHaveLength(16);
  });

  it("agrees with node:crypto on random bytes, across block boundaries and on unicode", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(md5Hex(bytes)).toBe(createHash("md5").update(bytes).digest("hex"));
      }),
    );
    for (const length of [55, 56, 63, 64, 65, 119, 120, 128, 100_000]) {
      const bytes = new Uint8Array(length).fill(length & 0xff);
      expect(md5Hex(bytes)).toBe(createHash("md5").update(bytes).digest("hex"));
    }
    const text = "choria=nœud-ü.example.net 😀 <>&";
    expect(md5Hex(utf8(text))).toBe(createHash("md5").update(text, "utf8").digest("hex"));
  });
});

describe("caller ids", () => {
  it("hash choria=rip.mcollective to the token in the spec's reply subject", () => {
    expect(callerIdHash("choria=rip.mcollective")).toBe(
      createHash("md5").update("choria=rip.mcollective").digest("hex"),
    );
    expect(callerIdHash("choria=rip.mcollective")).toBe("37bdf08389145a56c13096c178802d3b");
  });

  it("build <type>=<name> and extract the certname with the spec's pattern", () => {
    expect(callerId("rip.mcollective")).toBe("choria=rip.mcollective");
    expect(callerId("ci", "jwt")).toBe("jwt=ci");
    expect(certnameFromCallerId("choria=rip.mcollective")).toBe("rip.mcollective");
    expect(certnameFromCallerId("choria=web_1-a.example.net trailing")).toBe("web_1-a.example.net");
    expect(certnameFromCallerId("Choria=x")).toBeUndefined();
    expect(certnameFromCallerId("rip.mcollective")).toBeUndefined();
    expect(certnameFromCallerId("choria=")).toBeUndefined();
    expect(certnameFromCallerId("choria= x")).toBeUndefined();
  });
});

describe("request ids", () => {
  it("are 32 lower-case hex characters from a v4 UUID, and unique", () => {
    const ids = new Set(Array.from({ length: 100 }, newRequestId));
    expect(ids.size).toBe(100);
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
      expect(isRequestId(id)).toBe(true);
    }
  });

  it("isRequestId refuses other shapes", () => {
    for (const id of [
      "",
      "9F4A8D2C6E1B4A7D8C3E2F1A0B9C8D7E",
      "9f4a8d2c-6e1b-4a7d-8c3e-2f1a0b9c8d7e",
      "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7",
      "2QkgWXCVZRwvjOrdCW0xpTlVQYR",
    ]) {
      expect(isRequestId(id)).toBe(false);
    }
  });
});
