import { describe, expect, it } from "vitest";
import { SYNC_SHA256_MAX, sha256, sha256Digest } from "../../../lib/security/sha256.ts";

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const webCrypto = async (bytes: Uint8Array) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));

describe("sha256", () => {
  it("gives the FIPS 180-4 example digests", () => {
    const text = (s: string) => new TextEncoder().encode(s);
    expect(hex(sha256(text("")))).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(hex(sha256(text("abc")))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(hex(sha256(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("agrees with WebCrypto at every length around the block and padding boundaries", async () => {
    for (let length = 0; length <= 200; length++) {
      const bytes = crypto.getRandomValues(new Uint8Array(length));
      expect(hex(sha256(bytes)), `length ${length}`).toBe(hex(await webCrypto(bytes)));
    }
  });

  it("hashes a view at its own offset, and large inputs by WebCrypto with the same result", async () => {
    const backing = crypto.getRandomValues(new Uint8Array(SYNC_SHA256_MAX + 100));
    const view = backing.subarray(7, 1007);
    expect(hex(sha256(view))).toBe(hex(await webCrypto(view)));
    for (const length of [SYNC_SHA256_MAX, SYNC_SHA256_MAX + 1]) {
      const bytes = backing.subarray(0, length);
      expect(hex(await sha256Digest(bytes))).toBe(hex(await webCrypto(bytes)));
    }
  });
});
