import type { Bytes } from "./bytes.ts";
import { LruCache } from "./lru.ts";
import { certificatesFromPem } from "./pem.ts";
import { x509 } from "./x509.ts";

export type CertificateFailureReason =
  | "bad_certificate"
  | "untrusted_certificate"
  | "certificate_expired"
  | "certificate_not_yet_valid";

export type CertificateResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: CertificateFailureReason; detail: string };

/** The facts about a certificate that Choria's checks use, read once at parse time. */
export interface ParsedCertificate {
  readonly subject: string;
  readonly issuer: string;
  readonly commonName: string | undefined;
  readonly dnsNames: readonly string[];
  /** Common name then DNS SANs, without repeats: the names Choria matches a certname against. */
  readonly names: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** basicConstraints cA; only CA certificates may sign intermediate links of a chain. */
  readonly isCA: boolean;
  /** False when an extendedKeyUsage extension is present and allows neither clientAuth nor any usage. */
  readonly allowsClientAuth: boolean;
  /** DER SubjectPublicKeyInfo, ready for `crypto.subtle.importKey("spki", ...)`. */
  readonly spki: Bytes;
  readonly der: Bytes;
  readonly x509: x509.X509Certificate;
}

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0";

/** Parses DER, or the first certificate of PEM text. */
export function parseCertificate(input: string | Uint8Array): CertificateResult<ParsedCertificate> {
  let der: Bytes;
  if (typeof input === "string") {
    const blocks = certificatesFromPem(input);
    if (!blocks.ok) return { ok: false, reason: "bad_certificate", detail: blocks.error };
    der = blocks.value[0]!;
  } else {
    // A private copy: the parsed facts must not change if the caller reuses its buffer.
    der = new Uint8Array(input);
  }
  try {
    return { ok: true, value: describe(der, new x509.X509Certificate(der)) };
  } catch (err) {
    return {
      ok: false,
      reason: "bad_certificate",
      detail: `not an X.509 certificate: ${(err as Error).message}`,
    };
  }
}

function describe(der: Bytes, cert: x509.X509Certificate): ParsedCertificate {
  const commonName = cert.subjectName.getField("CN").at(-1);
  const dnsNames =
    cert
      .getExtension(x509.SubjectAlternativeNameExtension)
      ?.names.items.filter((name) => name.type === "dns")
      .map((name) => name.value) ?? [];
  const usages = cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages.map(String);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    commonName,
    dnsNames,
    names: [...new Set(commonName === undefined ? dnsNames : [commonName, ...dnsNames])],
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    isCA: cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
    allowsClientAuth:
      usages === undefined || usages.includes(CLIENT_AUTH) || usages.includes(ANY_EXTENDED_KEY_USAGE),
    spki: new Uint8Array(cert.publicKey.rawData),
    der,
    x509: cert,
  };
}

/** Where `now` falls in a certificate's validity window; both ends are inclusive, as in Go. */
export function validityAt(
  cert: Pick<ParsedCertificate, "notBefore" | "notAfter">,
  now: Date,
): "valid" | "expired" | "not_yet_valid" {
  const at = now.getTime();
  if (at < cert.notBefore.getTime()) return "not_yet_valid";
  if (at > cert.notAfter.getTime()) return "expired";
  return "valid";
}

export interface TrustStoreOptions {
  /** How many distinct pubcert PEMs keep their verdict cached (least recently used go first). */
  cacheSize?: number;
}

/** Longest chain accepted below a trust anchor: leaf plus intermediates. */
const MAX_CHAIN_LENGTH = 5;

/** The time window in which one verified chain is valid, and the certificates that bound it. */
interface ChainWindow {
  notBefore: number;
  notAfter: number;
  startsWith: string;
  endsWith: string;
}

/**
 * Signature checks do not depend on the clock, so a verdict is cached per PEM text and only its validity
 * windows are compared with `now` on each call.
 */
type ChainVerdict =
  | { ok: true; certificate: ParsedCertificate; windows: ChainWindow[] }
  | { ok: false; reason: "bad_certificate" | "untrusted_certificate"; detail: string };

/**
 * The configured CA bundle, built once and shared. `verify` answers whether a pubcert chains to one of
 * the CAs (through intermediates carried after the leaf in the same PEM, as Go accepts) and is within
 * every validity window of that chain at `now`.
 */
export class TrustStore {
  readonly authorities: readonly ParsedCertificate[];
  readonly #verdicts: LruCache<string, Promise<ChainVerdict>>;

  private constructor(authorities: ParsedCertificate[], options: TrustStoreOptions) {
    this.authorities = authorities;
    this.#verdicts = new LruCache(options.cacheSize ?? 1024);
  }

  /** Builds a store from CA PEM text holding one or more certificates. Throws on unusable CA text. */
  static fromPem(caPem: string, options: TrustStoreOptions = {}): TrustStore {
    const blocks = certificatesFromPem(caPem);
    if (!blocks.ok) throw new Error(`CA bundle: ${blocks.error}`);
    const authorities = blocks.value.map((der, index) => {
      const parsed = parseCertificate(der);
      if (!parsed.ok) throw new Error(`CA bundle certificate ${index + 1}: ${parsed.detail}`);
      return parsed.value;
    });
    return new TrustStore(authorities, options);
  }

  async verify(pubcert: string, now: Date = new Date()): Promise<CertificateResult<ParsedCertificate>> {
    let verdict = this.#verdicts.get(pubcert);
    if (verdict === undefined) {
      // The promise itself is cached so concurrent requests carrying a new pubcert share one check.
      verdict = this.#judge(pubcert);
      this.#verdicts.set(pubcert, verdict);
    }
    const settled = await verdict;
    if (!settled.ok) return settled;
    return withinAnyWindow(settled.certificate, settled.windows, now.getTime());
  }

  async #judge(pubcert: string): Promise<ChainVerdict> {
    const blocks = certificatesFromPem(pubcert);
    if (!blocks.ok) return { ok: false, reason: "bad_certificate", detail: blocks.error };
    const parsed: ParsedCertificate[] = [];
    for (const der of blocks.value) {
      const cert = parseCertificate(der);
      if (!cert.ok) return { ok: false, reason: "bad_certificate", detail: cert.detail };
      parsed.push(cert.value);
    }
    const [leaf, ...intermediates] = parsed as [ParsedCertificate, ...ParsedCertificate[]];
    if (!leaf.allowsClientAuth) {
      return { ok: false, reason: "untrusted_certificate", detail: `${leaf.subject} is not for client auth` };
    }
    const windows = await this.#chainWindows(leaf, intermediates, [leaf]);
    if (windows.length === 0) {
      return {
        ok: false,
        reason: "untrusted_certificate",
        detail: `${leaf.subject} (issuer ${leaf.issuer}) does not chain to a configured CA`,
      };
    }
    return { ok: true, certificate: leaf, windows };
  }

  /** Windows of every chain from `cert` up to a trust anchor; empty when there is none. */
  async #chainWindows(
    cert: ParsedCertificate,
    intermediates: readonly ParsedCertificate[],
    path: readonly ParsedCertificate[],
  ): Promise<ChainWindow[]> {
    const windows: ChainWindow[] = [];
    for (const anchor of this.authorities) {
      if (anchor.allowsClientAuth && (await issued(anchor, cert))) {
        windows.push(narrow(windowOf(anchor), cert));
      }
    }
    if (path.length >= MAX_CHAIN_LENGTH) return windows;
    for (const candidate of intermediates) {
      if (path.includes(candidate) || !candidate.isCA || !candidate.allowsClientAuth) continue;
      if (!(await issued(candidate, cert))) continue;
      for (const above of await this.#chainWindows(candidate, intermediates, [...path, candidate])) {
        windows.push(narrow(above, cert));
      }
    }
    return windows;
  }
}

async function issued(issuer: ParsedCertificate, cert: ParsedCertificate): Promise<boolean> {
  if (issuer.subject !== cert.issuer) return false;
  // Go refuses SHA-1 certificate signatures; accepting them here would trust chains Choria servers reject.
  const hash = (cert.x509.signatureAlgorithm as { hash?: { name?: string } }).hash?.name;
  if (hash === "SHA-1") return false;
  try {
    return await cert.x509.verify({ publicKey: issuer.x509.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

function windowOf(cert: ParsedCertificate): ChainWindow {
  return {
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    startsWith: cert.subject,
    endsWith: cert.subject,
  };
}

function narrow(window: ChainWindow, cert: ParsedCertificate): ChainWindow {
  const own = windowOf(cert);
  return {
    notBefore: Math.max(window.notBefore, own.notBefore),
    notAfter: Math.min(window.notAfter, own.notAfter),
    startsWith: own.notBefore >= window.notBefore ? own.startsWith : window.startsWith,
    endsWith: own.notAfter <= window.notAfter ? own.endsWith : window.endsWith,
  };
}

function withinAnyWindow(
  certificate: ParsedCertificate,
  windows: readonly ChainWindow[],
  now: number,
): CertificateResult<ParsedCertificate> {
  if (windows.some((w) => w.notBefore <= now && now <= w.notAfter)) return { ok: true, value: certificate };
  // Report the window closest to usable: a renewed CA beside an expired one should not read as "expired".
  const pending = windows.filter((w) => now < w.notBefore).sort((a, b) => a.notBefore - b.notBefore)[0];
  if (pending !== undefined) {
    return {
      ok: false,
      reason: "certificate_not_yet_valid",
      detail: `${pending.startsWith} is not valid before ${new Date(pending.notBefore).toISOString()}`,
    };
  }
  const latest = [...windows].sort((a, b) => b.notAfter - a.notAfter)[0]!;
  return {
    ok: false,
    reason: "certificate_expired",
    detail: `${latest.endsWith} expired at ${new Date(latest.notAfter).toISOString()}`,
  };
}
