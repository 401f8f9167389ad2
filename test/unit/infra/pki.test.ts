import { X509Certificate } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type DemoPki,
  ensureDemoPki,
  issueCertificate,
  openCertificateAuthority,
} from "../../../infra/pki.ts";
import { decodeSecureRequest } from "../../../lib/protocol/secure.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import { loadSigner, signRequest, verifySecureRequest } from "../../../lib/security/choria.ts";
import { x509 } from "../../../lib/security/x509.ts";

let dir: string;
let first: DemoPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-pki-"));
  first = await ensureDemoPki(dir);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ensureDemoPki", () => {
  it("writes the CA, gateway, client and node material with private keys readable only by the owner", async () => {
    expect((await readdir(dir)).sort()).toEqual(
      [
        "ca-key.pem",
        "ca.pem",
        "gateway.privileged.mcollective-key.pem",
        "gateway.privileged.mcollective.pem",
        "node1.example.net-key.pem",
        "node1.example.net.pem",
        "rip.mcollective-key.pem",
        "rip.mcollective.pem",
      ].sort(),
    );
    for (const files of [first.ca, first.gateway, first.client, ...first.nodes]) {
      expect((await stat(files.keyPath)).mode & 0o777).toBe(0o600);
      expect(await readFile(files.keyPath, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(await readFile(files.certPath, "utf8")).toBe(files.certPem);
    }
  });

  it("produces material that signs and verifies as a privileged gateway", async () => {
    const trust = TrustStore.fromPem(await readFile(first.ca.certPath, "utf8"));
    const signer = await loadSigner(first.gateway);
    expect(signer.certname).toBe("gateway.privileged.mcollective");
    const secure = decodeSecureRequest(await signRequest(signer, '{"protocol":"choria:request:1"}'));
    if (!secure.ok) throw secure.error;
    expect(await verifySecureRequest(secure.value, "choria=someone.mcollective", { trust })).toEqual({
      ok: true,
      certname: "someone.mcollective",
      privileged: true,
    });
    expect((await trust.verify(first.client.certPem)).ok).toBe(true);
    expect((await trust.verify(first.nodes[0]!.certPem)).ok).toBe(true);
  });

  it("reuses what exists and issues only what is missing", async () => {
    await unlink(first.client.keyPath);
    const second = await ensureDemoPki(dir, { nodes: ["node1.example.net", "node2.example.net"] });
    expect(second.ca.certPem).toBe(first.ca.certPem);
    expect(second.gateway.certPem).toBe(first.gateway.certPem);
    expect(second.nodes[0]!.certPem).toBe(first.nodes[0]!.certPem);
    expect(second.client.certPem).not.toBe(first.client.certPem);
    expect(second.nodes.map((n) => n.certname)).toEqual(["node1.example.net", "node2.example.net"]);
    const trust = TrustStore.fromPem(second.ca.certPem);
    expect((await trust.verify(second.client.certPem)).ok).toBe(true);
    expect((await trust.verify(second.nodes[1]!.certPem)).ok).toBe(true);
  });
});

describe("issueCertificate", () => {
  it("adds IP address SANs after the DNS ones, so a server reached by address passes the hostname check", async () => {
    const ca = await openCertificateAuthority({ certPem: first.ca.certPem, keyPem: first.ca.keyPem });
    const issued = await issueCertificate(ca, "fed-1.nats.choria-edge", {
      extraDnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
    });
    const san = new x509.X509Certificate(issued.certPem).getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.toJSON()).toEqual([
      { type: "dns", value: "fed-1.nats.choria-edge" },
      { type: "dns", value: "localhost" },
      { type: "ip", value: "127.0.0.1" },
    ]);
    // Node's own parser agrees (its TLS client checks an address against exactly this).
    expect(new X509Certificate(issued.certPem).checkIP("127.0.0.1")).toBe("127.0.0.1");
  });
});
