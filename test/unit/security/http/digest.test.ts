import { describe, expect, it } from "vitest";
import { checkContentDigest, contentDigest } from "../../../../lib/security/http/mod.ts";
import { appendixB } from "./support.ts";

const body = new TextEncoder().encode(appendixB.rfc9530.body);

describe("Content-Digest checks", () => {
  it("digests the raw bytes: the same JSON with other whitespace does not match", async () => {
    const compact = new TextEncoder().encode('{"hello":"world"}');
    expect(await checkContentDigest(appendixB.rfc9530["sha-256"], compact)).toMatchObject({
      ok: false,
      problem: "digest_mismatch",
    });
  });

  it("needs every supported digest listed to match", async () => {
    const other = await contentDigest(new TextEncoder().encode("other"), "sha-512");
    expect(await checkContentDigest(`${appendixB.rfc9530["sha-256"]}, ${other}`, body)).toMatchObject({
      ok: false,
      problem: "digest_mismatch",
    });
  });

  it("ignores algorithms it does not know, which therefore cannot satisfy the check alone", async () => {
    const md5 = "md5=:XrY7u+Ae7tCTyyK7j1rNww==:";
    expect(await checkContentDigest(`${md5}, ${appendixB.rfc9530["sha-256"]}`, body)).toEqual({ ok: true });
    expect(await checkContentDigest(md5, body)).toMatchObject({
      ok: false,
      problem: "unsupported_algorithm",
    });
  });

  it("refuses a missing field and malformed ones", async () => {
    expect(await checkContentDigest(null, body)).toMatchObject({ ok: false, problem: "missing_digest" });
    for (const field of ["sha-256", "sha-256=AAAA", "sha-256=:AAAA", "sha-256=(:AAAA:)", "SHA-256=:AAAA:"]) {
      const result = await checkContentDigest(field, body);
      expect({ field, result }).toMatchObject({ result: { ok: false, problem: "malformed_signature" } });
    }
  });

  it("digests an empty body", async () => {
    const empty = new Uint8Array(0);
    expect(await contentDigest(empty)).toBe("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
    expect(await checkContentDigest(await contentDigest(empty), empty)).toEqual({ ok: true });
  });
});
