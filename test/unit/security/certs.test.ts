import { describe, expect, it } from "vitest";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  openCertificateAuthority,
} from "../../../infra/pki.ts";
import { parseCertificate, TrustStore, validityAt } from "../../../lib/security/certs.ts";
import { encodePem } from "../../../lib/security/pem.ts";
import { x509 } from "../../../lib/security/x509.ts";
import { keyPairOf, testPki } from "../../support/pki.ts";

const DAY_MS = 86_400_000;

describe("parseCertificate", () => {
  it("reads names, validity and CA flag", async () => {
    const { gateway, caPem } = await testPki();
    const parsed = parseCertificate(gateway.certPem);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.commonName).toBe("gateway.privileged.mcollective");
    expect(parsed.value.dnsNames).toEqual(["gateway.privileged.mcollective"]);
    expect(parsed.value.names).toEqual(["gateway.privileged.mcollective"]);
    expect(parsed.value.isCA).toBe(false);
    expect(parsed.value.allowsClientAuth).toBe(true);
    expect(parsed.value.notBefore.getTime()).toBeLessThan(Date.now());
    expect(parsed.value.notAfter.getTime()).toBeGreaterThan(Date.now());
    const ca = parseCertificate(caPem);
    expect(ca.ok && ca.value.isCA).toBe(true);
  });

  it("lists the common name first and extra SANs after it", async () => {
    const { ca } = await testPki();
    const authority = await openCertificateAuthority(ca);
    const issued = await issueCertificate(authority, "web.mcollective", {
      extraDnsNames: ["alias.mcollective", "web.mcollective"],
      keys: await keyPairOf(ca),
    });
    const parsed = parseCertificate(issued.certPem);
    expect(parsed.ok && parsed.value.names).toEqual(["web.mcollective", "alias.mcollective"]);
  });

  it("reports garbage as bad_certificate instead of throwing", () => {
    expect(parseCertificate("nope")).toMatchObject({ ok: false, reason: "bad_certificate" });
    const notDer = encodePem("CERTIFICATE", new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]));
    expect(parseCertificate(notDer)).toMatchObject({ ok: false, reason: "bad_certificate" });
  });
});

describe("validityAt", () => {
  it("treats both ends of the window as valid", () => {
    const window = { notBefore: new Date(1000), notAfter: new Date(2000) };
    expect(validityAt(window, new Date(999))).toBe("not_yet_valid");
    expect(validityAt(window, new Date(1000))).toBe("valid");
    expect(validityAt(window, new Date(2000))).toBe("valid");
    expect(validityAt(window, new Date(2001))).toBe("expired");
  });
});

describe("TrustStore", () => {
  it("accepts certificates issued by the CA", async () => {
    const pki = await testPki();
    const trust = TrustStore.fromPem(pki.caPem);
    for (const material of [pki.client, pki.gateway, ...pki.nodes]) {
      const result = await trust.verify(material.certPem);
      expect(result.ok && result.value.commonName).toBe(material.certname);
    }
  });

  it("refuses a certificate from another CA even with the same name and key", async () => {
    const pki = await testPki();
    const result = await TrustStore.fromPem(pki.caPem).verify(pki.untrusted.certPem);
    expect(result).toMatchObject({ ok: false, reason: "untrusted_certificate" });
  });

  it("trusts every CA of a bundle", async () => {
    const pki = await testPki();
    const trust = TrustStore.fromPem(`${pki.untrustedCaPem}${pki.caPem}`);
    expect(trust.authorities).toHaveLength(2);
    expect((await trust.verify(pki.untrusted.certPem)).ok).toBe(true);
    expect((await trust.verify(pki.client.certPem)).ok).toBe(true);
  });

  it("refuses a certificate whose subject matches the CA but whose signature does not", async () => {
    const pki = await testPki();
    // Same CA name, different key: only the signature check can tell them apart.
    const keys = await keyPairOf(pki.client);
    const impostorCa = await createCertificateAuthority("choria-edge test CA", { keys });
    const forged = await issueCertificate(impostorCa, "rip.mcollective", { keys });
    const result = await TrustStore.fromPem(pki.caPem).verify(forged.certPem);
    expect(result).toMatchObject({ ok: false, reason: "untrusted_certificate" });
  });

  it("reports expiry and not-yet-valid against the given time", async () => {
    const pki = await testPki();
    const trust = TrustStore.fromPem(pki.caPem);
    expect(await trust.verify(pki.expired.certPem)).toMatchObject({
      ok: false,
      reason: "certificate_expired",
    });
    const longAgo = new Date(Date.now() - 365 * DAY_MS);
    expect(await trust.verify(pki.client.certPem, longAgo)).toMatchObject({
      ok: false,
      reason: "certificate_not_yet_valid",
    });
    const farFuture = new Date(Date.now() + 20 * 365 * DAY_MS);
    const expired = await trust.verify(pki.client.certPem, farFuture);
    expect(expired).toMatchObject({ ok: false, reason: "certificate_expired" });
    // The client (5 years) lapses before its CA (10 years), so the detail names the client.
    expect(!expired.ok && expired.detail).toContain("rip.mcollective");
  });

  it("refuses a leaf once its CA has expired", async () => {
    const keys = await keyPairOf((await testPki()).client);
    const now = Date.now();
    const shortCa = await createCertificateAuthority("short-lived CA", {
      keys,
      notAfter: new Date(now + DAY_MS),
    });
    const leaf = await issueCertificate(shortCa, "rip.mcollective", { keys });
    const trust = TrustStore.fromPem(shortCa.certPem);
    expect((await trust.verify(leaf.certPem, new Date(now))).ok).toBe(true);
    const later = await trust.verify(leaf.certPem, new Date(now + 2 * DAY_MS));
    expect(later).toMatchObject({ ok: false, reason: "certificate_expired" });
    expect(!later.ok && later.detail).toContain("short-lived CA");
  });

  it("follows intermediates sent after the leaf, and only CA intermediates", async () => {
    const pki = await testPki();
    const root = await openCertificateAuthority(pki.ca);
    const keys = await keyPairOf(pki.client);
    const intermediate = await intermediateOf(root, "choria-edge intermediate", true, keys);
    const leaf = await issueCertificate(intermediate, "rip.mcollective", { keys });
    const trust = TrustStore.fromPem(pki.caPem);
    expect((await trust.verify(leaf.certPem)).ok).toBe(false);
    const chained = await trust.verify(`${leaf.certPem}${intermediate.certPem}`);
    expect(chained.ok && chained.value.commonName).toBe("rip.mcollective");

    const notCa = await intermediateOf(root, "not a CA", false, keys);
    const badLeaf = await issueCertificate(notCa, "rip.mcollective", { keys });
    expect(await trust.verify(`${badLeaf.certPem}${notCa.certPem}`)).toMatchObject({
      ok: false,
      reason: "untrusted_certificate",
    });
  });

  it("refuses a leaf whose extended key usage excludes client auth", async () => {
    const pki = await testPki();
    const root = await openCertificateAuthority(pki.ca);
    const keys = await keyPairOf(pki.client);
    const serverOnly = await x509.X509CertificateGenerator.create({
      subject: "CN=rip.mcollective",
      issuer: root.certificate.subject,
      publicKey: keys.publicKey,
      signingKey: root.signingKey,
      signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])],
    });
    const result = await TrustStore.fromPem(pki.caPem).verify(serverOnly.toString("pem"));
    expect(result).toMatchObject({ ok: false, reason: "untrusted_certificate" });
    expect(!result.ok && result.detail).toMatch(/client auth/);
  });

  it("caches the verdict per PEM text and evicts the least recently used", async () => {
    const pki = await testPki();
    const trust = TrustStore.fromPem(pki.caPem, { cacheSize: 2 });
    const first = await trust.verify(pki.client.certPem);
    const again = await trust.verify(pki.client.certPem);
    expect(first.ok && again.ok && first.value === again.value).toBe(true);
    const [concurrentA, concurrentB] = await Promise.all([
      trust.verify(pki.gateway.certPem),
      trust.verify(pki.gateway.certPem),
    ]);
    expect(concurrentA.ok && concurrentB.ok && concurrentA.value === concurrentB.value).toBe(true);
    await trust.verify(pki.nodes[0]!.certPem);
    const afterEviction = await trust.verify(pki.client.certPem);
    expect(afterEviction.ok && first.ok && afterEviction.value !== first.value).toBe(true);
  });

  it("throws when built from text without a CA certificate", () => {
    expect(() => TrustStore.fromPem("")).toThrow(/CA bundle/);
  });
});

async function intermediateOf(
  root: CertificateAuthority,
  name: string,
  isCA: boolean,
  keys: CryptoKeyPair,
): Promise<CertificateAuthority> {
  const certificate = await x509.X509CertificateGenerator.create({
    subject: `CN=${name}`,
    issuer: root.certificate.subject,
    publicKey: keys.publicKey,
    signingKey: root.signingKey,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 365 * DAY_MS),
    signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    extensions: [new x509.BasicConstraintsExtension(isCA, undefined, true)],
  });
  const certPem = encodePem("CERTIFICATE", new Uint8Array(certificate.rawData));
  return { certname: name, certPem, keyPem: "", certificate, signingKey: keys.privateKey };
}
