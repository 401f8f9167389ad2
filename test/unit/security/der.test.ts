import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCertificate } from "../../../lib/security/certs.ts";
import { signerCertificate } from "../../../lib/security/der.ts";
import { encodePem } from "../../../lib/security/pem.ts";
import { x509 } from "../../../lib/security/x509.ts";
import { keyPairOf, testPki } from "../../support/pki.ts";

const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

/** Self-signed, with the subject and SANs given: shapes the test PKI does not issue. */
async function selfSigned(subject: string, sans: x509.JsonGeneralName[]): Promise<string> {
  const keys = await keyPairOf((await testPki()).client);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: subject,
    keys,
    signingAlgorithm: RSA,
    extensions: sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
  });
  return cert.toString("pem");
}

describe("signerCertificate reads what the X.509 library reads", () => {
  it("for every certificate of the test PKI and for unusual names", async () => {
    const pki = await testPki();
    const pems = [
      pki.caPem,
      pki.client.certPem,
      pki.gateway.certPem,
      pki.expired.certPem,
      pki.untrustedCaPem,
      ...pki.nodes.map((node) => node.certPem),
      await selfSigned("CN=first, O=Example, CN=last", [{ type: "dns", value: "alt.example" }]),
      await selfSigned("CN=ünïcode.example", []),
      await selfSigned("O=no common name", [
        { type: "ip", value: "127.0.0.1" },
        { type: "email", value: "a@example.net" },
        { type: "dns", value: "only.example" },
        { type: "dns", value: "only.example" },
      ]),
    ];
    for (const pem of pems) {
      const expected = parseCertificate(pem);
      const got = signerCertificate(pem);
      if (!expected.ok || !got.ok) throw new Error(`unreadable: ${JSON.stringify([expected, got])}`);
      expect(got.value.names).toEqual(expected.value.names);
      expect(got.value.spki).toEqual(expected.value.spki);
    }
  });

  it("answers damaged input with an error, never a throw", async () => {
    expect(signerCertificate("junk")).toMatchObject({ ok: false });
    const parsed = parseCertificate((await testPki()).client.certPem);
    if (!parsed.ok) throw new Error(parsed.detail);
    const der = parsed.value.der;
    fc.assert(
      fc.property(
        fc.nat(der.length - 1),
        fc.integer({ min: 0, max: 255 }),
        fc.nat(der.length),
        (at, byte, cut) => {
          const damaged = der.slice(0, Math.max(1, cut));
          damaged[Math.min(at, damaged.length - 1)] = byte;
          const result = signerCertificate(encodePem("CERTIFICATE", damaged));
          expect(typeof result.ok).toBe("boolean");
        },
      ),
    );
  });
});
