import { createPrivateKey, X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  certificatesFromPem,
  encodePem,
  parsePem,
  pkcs8FromPem,
  splitCertificateBundle,
  wrapPkcs1RsaKey,
} from "../../../lib/security/pem.ts";
import { testPki } from "../../support/pki.ts";

describe("parsePem", () => {
  it("reads every block in order and ignores text between them", async () => {
    const pki = await testPki();
    const bundle = `subject=CN=one\n${pki.caPem}Bag Attributes: none\n${pki.untrustedCaPem}`;
    const parsed = parsePem(bundle);
    expect(parsed.ok && parsed.value.map((b) => b.label)).toEqual(["CERTIFICATE", "CERTIFICATE"]);
    const second = new X509Certificate(pki.untrustedCaPem).raw;
    expect(parsed.ok && Array.from(parsed.value[1]!.der)).toEqual(Array.from(second));
  });

  it("accepts CRLF line endings", async () => {
    const { caPem } = await testPki();
    const parsed = certificatesFromPem(caPem.replaceAll("\n", "\r\n"));
    expect(parsed.ok && parsed.value).toHaveLength(1);
  });

  it("fails on text without PEM, bad base64, mismatched armour and encrypted blocks", () => {
    expect(parsePem("hello").ok).toBe(false);
    expect(parsePem("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").ok).toBe(false);
    expect(parsePem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n").ok).toBe(false);
    const encrypted =
      "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    const result = parsePem(encrypted);
    expect(!result.ok && result.error).toMatch(/encrypted/);
  });

  it("requires a CERTIFICATE block for certificates", async () => {
    const { client } = await testPki();
    const result = certificatesFromPem(client.keyPem);
    expect(!result.ok && result.error).toMatch(/no CERTIFICATE/);
  });
});

describe("splitCertificateBundle", () => {
  it("returns one canonical PEM per certificate", async () => {
    const pki = await testPki();
    const split = splitCertificateBundle(`${pki.caPem}\n\n${pki.untrustedCaPem}`);
    // Both inputs were written by encodePem, so the canonical form is the input itself.
    expect(split.ok && split.value).toEqual([pki.caPem, pki.untrustedCaPem]);
  });
});

describe("encodePem", () => {
  it("wraps base64 at 64 columns and ends with a newline", () => {
    const pem = encodePem("TEST", new Uint8Array(100).fill(7));
    const lines = pem.split("\n");
    expect(lines[0]).toBe("-----BEGIN TEST-----");
    expect(lines[1]).toHaveLength(64);
    expect(lines.at(-2)).toBe("-----END TEST-----");
    expect(pem.endsWith("-----\n")).toBe(true);
    const back = parsePem(pem);
    expect(back.ok && Array.from(back.value[0]!.der)).toEqual(Array.from(new Uint8Array(100).fill(7)));
  });
});

describe("pkcs8FromPem", () => {
  it("returns PKCS#8 keys unchanged", async () => {
    const { client } = await testPki();
    const expected = createPrivateKey(client.keyPem).export({ type: "pkcs8", format: "der" });
    const result = pkcs8FromPem(client.keyPem);
    expect(result.ok && Buffer.from(result.value).equals(expected)).toBe(true);
  });

  it("wraps a PKCS#1 RSA PRIVATE KEY into the PKCS#8 OpenSSL would write", async () => {
    const { client } = await testPki();
    const key = createPrivateKey(client.keyPem);
    const pkcs1Pem = key.export({ type: "pkcs1", format: "pem" }) as string;
    expect(pkcs1Pem).toContain("BEGIN RSA PRIVATE KEY");
    const result = pkcs8FromPem(pkcs1Pem);
    const opensslPkcs8 = key.export({ type: "pkcs8", format: "der" });
    expect(result.ok && Buffer.from(result.value).equals(opensslPkcs8)).toBe(true);
  });

  it("refuses encrypted, non-RSA and missing keys", async () => {
    const { caPem } = await testPki();
    const encrypted = encodePem("ENCRYPTED PRIVATE KEY", new Uint8Array([1, 2, 3]));
    expect(pkcs8FromPem(encrypted)).toEqual({ ok: false, error: "encrypted private keys are not supported" });
    const ec = pkcs8FromPem(encodePem("EC PRIVATE KEY", new Uint8Array([1, 2, 3])));
    expect(!ec.ok && ec.error).toMatch(/RSA/);
    expect(pkcs8FromPem(caPem).ok).toBe(false);
  });
});

describe("wrapPkcs1RsaKey", () => {
  it("uses short and long DER lengths at the 127/128 byte boundary", () => {
    // Around the key: version (3 bytes), algorithm (15) and the OCTET STRING header (2, or 4 past 255).
    const short = wrapPkcs1RsaKey(new Uint8Array(127 - 20));
    expect(Array.from(short.subarray(0, 2))).toEqual([0x30, 0x7f]);
    const long = wrapPkcs1RsaKey(new Uint8Array(128 - 20));
    expect(Array.from(long.subarray(0, 3))).toEqual([0x30, 0x81, 0x80]);
    const twoByteLength = wrapPkcs1RsaKey(new Uint8Array(300));
    expect(Array.from(twoByteLength.subarray(0, 4))).toEqual([0x30, 0x82, 0x01, 0x42]);
  });
});
