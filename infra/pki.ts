// Certificate material for the local stack and the tests: an RSA CA and the certificates Choria v1
// expects (node, client, privileged gateway). Building is WebCrypto and @peculiar/x509; only
// ensureDemoPki touches the disk.
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encodePem, pkcs8FromPem } from "../lib/security/mod.ts";
import { parseCertificate, validityAt, x509 } from "../lib/security/node.ts";

const RSA_SHA256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;
const RSA_KEYGEN: RsaHashedKeyGenParams = {
  ...RSA_SHA256,
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
};
const DAY_MS = 86_400_000;
// Backdated so a freshly made certificate is already valid on a machine whose clock runs a little behind.
const CLOCK_SKEW_MS = 3_600_000;

/** A certificate and its private key, both PEM; the key is unencrypted PKCS#8. */
export interface KeyedCertificate {
  certname: string;
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthority extends KeyedCertificate {
  certificate: x509.X509Certificate;
  signingKey: CryptoKey;
}

export interface ValidityOptions {
  notBefore?: Date;
  notAfter?: Date;
  /** Reuse a key pair instead of generating one (RSA key generation takes a few hundred ms). */
  keys?: CryptoKeyPair;
}

export interface IssueOptions extends ValidityOptions {
  /** DNS SANs besides the certname, which is always the first SAN. */
  extraDnsNames?: string[];
  /** IP address SANs (a server reached as `tls://127.0.0.1:4222` is checked against these). */
  ipAddresses?: string[];
}

export function generateRsaKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(RSA_KEYGEN, true, ["sign", "verify"]);
}

export async function createCertificateAuthority(
  commonName: string,
  options: ValidityOptions = {},
): Promise<CertificateAuthority> {
  const keys = options.keys ?? (await generateRsaKeys());
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    keys,
    serialNumber: randomSerial(),
    notBefore: options.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS),
    notAfter: options.notAfter ?? new Date(Date.now() + 10 * 365 * DAY_MS),
    signingAlgorithm: RSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certname: commonName,
    certPem: certificatePem(certificate),
    keyPem: await privateKeyPem(keys.privateKey),
    certificate,
    signingKey: keys.privateKey,
  };
}

/** Loads a CA written earlier (PEM certificate and PKCS#8 or PKCS#1 key) so it can issue more. */
export async function openCertificateAuthority(material: {
  certPem: string;
  keyPem: string;
}): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(material.certPem);
  const pkcs8 = pkcs8FromPem(material.keyPem);
  if (!pkcs8.ok) throw new Error(`CA key: ${pkcs8.error}`);
  const signingKey = await crypto.subtle.importKey("pkcs8", pkcs8.value, RSA_SHA256, false, ["sign"]);
  const certname = certificate.subjectName.getField("CN")[0] ?? certificate.subject;
  return { ...material, certname, certificate, signingKey };
}

/**
 * Issues a Puppet-style Choria certificate: CN and first DNS SAN are the certname, usable for TLS
 * client and server auth, so the same certificate serves NATS TLS and message signing.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  certname: string,
  options: IssueOptions = {},
): Promise<KeyedCertificate> {
  const keys = options.keys ?? (await generateRsaKeys());
  const dnsNames = [certname, ...(options.extraDnsNames ?? [])];
  const certificate = await x509.X509CertificateGenerator.create({
    subject: `CN=${certname}`,
    issuer: ca.certificate.subject,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    serialNumber: randomSerial(),
    notBefore: options.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS),
    notAfter: options.notAfter ?? new Date(Date.now() + 5 * 365 * DAY_MS),
    signingAlgorithm: RSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...(options.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certname, certPem: certificatePem(certificate), keyPem: await privateKeyPem(keys.privateKey) };
}

function certificatePem(certificate: x509.X509Certificate): string {
  return encodePem("CERTIFICATE", new Uint8Array(certificate.rawData));
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return encodePem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", key)));
}

/** 16 random bytes as hex with the top bit clear, so the DER INTEGER is positive (RFC 5280 §4.1.2.2). */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The demo PKI's RPC client certname (on the default allow list). */
export const DEMO_RPC_CLIENT = "rip.mcollective";

export interface DemoPkiOptions {
  /** Member node identities; default `node1.example.net`. */
  nodes?: string[];
  /** The RPC client certname; default `rip.mcollective` (on the default allow list). */
  client?: string;
  /** The gateway certname; default `gateway.privileged.mcollective`, so it may sign for any callerid. */
  gateway?: string;
}

/** Certificate material on disk: the PEM texts and where they live. */
export interface PkiFiles extends KeyedCertificate {
  certPath: string;
  keyPath: string;
}

export interface DemoPki {
  dir: string;
  ca: PkiFiles;
  gateway: PkiFiles;
  client: PkiFiles;
  nodes: PkiFiles[];
}

/** Material that expires within this margin is made again rather than reused. */
const RENEW_MARGIN_MS = DAY_MS;

/**
 * Makes `dir` hold a CA (ca.pem, ca-key.pem) and certificates `<certname>.pem` / `<certname>-key.pem` for
 * the gateway, the client and every node, creating whatever is missing or about to expire and reusing
 * the rest. Keys are PKCS#8 with mode 0600. A new CA re-issues every certificate.
 */
export async function ensureDemoPki(dir: string, options: DemoPkiOptions = {}): Promise<DemoPki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caFiles = { certPath: join(dir, "ca.pem"), keyPath: join(dir, "ca-key.pem") };
  let ca: CertificateAuthority;
  let caIsNew = false;
  const existingCa = await readUsable(caFiles.certPath, caFiles.keyPath);
  if (existingCa) {
    ca = await openCertificateAuthority(existingCa);
  } else {
    ca = await createCertificateAuthority("choria-edge demo CA");
    await writeKeyed(caFiles.certPath, caFiles.keyPath, ca);
    caIsNew = true;
  }

  const ensure = async (certname: string): Promise<PkiFiles> => {
    const files = { certPath: join(dir, `${certname}.pem`), keyPath: join(dir, `${certname}-key.pem`) };
    const existing = caIsNew ? undefined : await readUsable(files.certPath, files.keyPath);
    if (existing) return { certname, ...existing, ...files };
    const issued = await issueCertificate(ca, certname);
    await writeKeyed(files.certPath, files.keyPath, issued);
    return { ...issued, ...files };
  };

  const [gateway, client, ...nodes] = await Promise.all([
    ensure(options.gateway ?? "gateway.privileged.mcollective"),
    ensure(options.client ?? DEMO_RPC_CLIENT),
    ...(options.nodes ?? ["node1.example.net"]).map(ensure),
  ]);
  return {
    dir,
    ca: { certname: ca.certname, certPem: ca.certPem, keyPem: ca.keyPem, ...caFiles },
    gateway: gateway!,
    client: client!,
    nodes,
  };
}

async function readUsable(
  certPath: string,
  keyPath: string,
): Promise<{ certPem: string; keyPem: string } | undefined> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]);
  } catch {
    return undefined;
  }
  const cert = parseCertificate(certPem);
  if (!cert.ok || !pkcs8FromPem(keyPem).ok) return undefined;
  if (validityAt(cert.value, new Date(Date.now() + RENEW_MARGIN_MS)) !== "valid") return undefined;
  return { certPem, keyPem };
}

/** Writes key then certificate, each through a rename so a reader never sees half a file. */
async function writeKeyed(certPath: string, keyPath: string, material: KeyedCertificate): Promise<void> {
  await writeAtomically(keyPath, material.keyPem, 0o600);
  await writeAtomically(certPath, material.certPem, 0o644);
}

async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  // writeFile's mode is filtered by the umask and ignored for an existing file; chmod states it outright.
  await chmod(temporary, mode);
  await rename(temporary, path);
}
