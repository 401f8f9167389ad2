// Test certificates, made with the same builder as the local stack's (infra/pki.ts). RSA key generation
// costs a few hundred ms per key, so the set is made once per process and also kept in the OS temp
// directory under a name derived from the builder's source, which lets other test files reuse it and
// makes any change to the builder produce a fresh set.
import { createHash } from "node:crypto";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createCertificateAuthority,
  generateRsaKeys,
  issueCertificate,
  type KeyedCertificate,
} from "../../infra/pki.ts";
import { parseCertificate, validityAt } from "../../lib/security/certs.ts";
import { pkcs8FromPem } from "../../lib/security/pem.ts";

export type { KeyedCertificate };

export interface TestPki {
  /** The trusted CA, PEM. */
  caPem: string;
  ca: KeyedCertificate;
  /** `node1.example.net`, `node2.example.net`. */
  nodes: KeyedCertificate[];
  /** `rip.mcollective`: an ordinary client on the default allow list. */
  client: KeyedCertificate;
  /** `gateway.privileged.mcollective`: may sign for any callerid. */
  gateway: KeyedCertificate;
  /** `expired.mcollective`, from the trusted CA, valid from 30 days ago until yesterday. */
  expired: KeyedCertificate;
  /** `rip.mcollective` again, same key as `client`, but issued by a CA nobody trusts. */
  untrusted: KeyedCertificate;
  untrustedCaPem: string;
}

const DAY_MS = 86_400_000;
let cached: Promise<TestPki> | undefined;

export function testPki(): Promise<TestPki> {
  cached ??= loadOrCreate();
  return cached;
}

async function loadOrCreate(): Promise<TestPki> {
  const path = join(tmpdir(), `choria-edge-test-pki-${await builderFingerprint()}.json`);
  const stored = await readStored(path);
  if (stored) return stored;
  // Test files run in parallel workers; one makes the set while the others wait for its file.
  const lock = `${path}.lock`;
  if (!(await takeLock(lock))) {
    const made = await waitForStored(path, lock);
    if (made) return made;
  }
  try {
    const pki = await createTestPki();
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(pki), { mode: 0o600 });
    await rename(temporary, path);
    return pki;
  } finally {
    await rm(lock, { force: true });
  }
}

async function takeLock(lock: string): Promise<boolean> {
  try {
    await writeFile(lock, String(process.pid), { flag: "wx" });
    return true;
  } catch {
    return false;
  }
}

/** Polls for the set another worker is making; undefined if it gives up or leaves no usable file. */
async function waitForStored(path: string, lock: string): Promise<TestPki | undefined> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const lockHeld = await stat(lock).then(
      () => true,
      () => false,
    );
    if (!lockHeld) return readStored(path);
  }
  return undefined;
}

async function builderFingerprint(): Promise<string> {
  const sources = await Promise.all(
    ["../../infra/pki.ts", "./pki.ts"].map((p) => readFile(fileURLToPath(new URL(p, import.meta.url)))),
  );
  const hash = createHash("sha256");
  for (const source of sources) hash.update(source);
  return hash.digest("hex").slice(0, 16);
}

async function readStored(path: string): Promise<TestPki | undefined> {
  let pki: TestPki;
  try {
    pki = JSON.parse(await readFile(path, "utf8")) as TestPki;
  } catch {
    return undefined;
  }
  // The long-lived certificates must stay valid for the whole run, so renew a set that is about to lapse.
  for (const material of [pki.ca, pki.gateway, pki.client, ...pki.nodes]) {
    const cert = parseCertificate(material?.certPem ?? "");
    if (!cert.ok || validityAt(cert.value, new Date(Date.now() + DAY_MS)) !== "valid") return undefined;
  }
  return pki;
}

async function createTestPki(): Promise<TestPki> {
  const [caKeys, otherCaKeys, clientKeys, ...leafKeys] = await Promise.all(
    Array.from({ length: 7 }, () => generateRsaKeys()),
  );
  const now = Date.now();
  const [ca, otherCa] = await Promise.all([
    // Backdated past the expired certificate's window, so tests can verify it at a time it was valid.
    createCertificateAuthority("choria-edge test CA", {
      keys: caKeys!,
      notBefore: new Date(now - 60 * DAY_MS),
    }),
    createCertificateAuthority("untrusted test CA", { keys: otherCaKeys! }),
  ]);
  const [node1, node2, gateway, expired, client, untrusted] = await Promise.all([
    issueCertificate(ca, "node1.example.net", { keys: leafKeys[0]! }),
    issueCertificate(ca, "node2.example.net", { keys: leafKeys[1]! }),
    issueCertificate(ca, "gateway.privileged.mcollective", { keys: leafKeys[2]! }),
    issueCertificate(ca, "expired.mcollective", {
      keys: leafKeys[3]!,
      notBefore: new Date(now - 30 * DAY_MS),
      notAfter: new Date(now - DAY_MS),
    }),
    issueCertificate(ca, "rip.mcollective", { keys: clientKeys! }),
    issueCertificate(otherCa, "rip.mcollective", { keys: clientKeys! }),
  ]);
  return {
    caPem: ca.certPem,
    ca: { certname: ca.certname, certPem: ca.certPem, keyPem: ca.keyPem },
    nodes: [node1, node2],
    client,
    gateway,
    expired,
    untrusted,
    untrustedCaPem: otherCa.certPem,
  };
}

const RSA_SHA256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

/**
 * The key pair of existing test material, for tests that need one more certificate: reusing a key costs
 * nothing, generating one costs a few hundred ms.
 */
export async function keyPairOf(material: KeyedCertificate): Promise<CryptoKeyPair> {
  const cert = parseCertificate(material.certPem);
  const pkcs8 = pkcs8FromPem(material.keyPem);
  if (!cert.ok || !pkcs8.ok) throw new Error(`unusable test material for ${material.certname}`);
  const [publicKey, privateKey] = await Promise.all([
    crypto.subtle.importKey("spki", cert.value.spki, RSA_SHA256, true, ["verify"]),
    crypto.subtle.importKey("pkcs8", pkcs8.value, RSA_SHA256, true, ["sign"]),
  ]);
  return { publicKey, privateKey };
}
