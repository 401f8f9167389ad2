// The few facts a signer needs from its own certificate, read with a minimal DER walker: the Worker signs
// with a certificate it is given and never checks one, so it carries no X.509 library (certs.ts has one).
import type { Bytes } from "./bytes.ts";
import { certificatesFromPem } from "./pem.ts";

/** What signing needs: the names Choria matches a certname against, and the key to check the private key by. */
export interface SignerCertificate {
  /** Common name then DNS SANs, without repeats, as ParsedCertificate.names. */
  readonly names: readonly string[];
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Bytes;
}

export type SignerCertificateResult = { ok: true; value: SignerCertificate } | { ok: false; error: string };

interface Element {
  readonly tag: number;
  /** Offsets of the whole element and of its contents in the buffer. */
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID = 0x06;
const OCTET_STRING = 0x04;
const VERSION = 0xa0;
const EXTENSIONS = 0xa3;
const DNS_NAME = 0x82;
const COMMON_NAME = "550403";
const SUBJECT_ALT_NAME = "551d11";

class DerError extends Error {}

function element(der: Bytes, at: number, limit: number): Element {
  if (at + 2 > limit) throw new DerError("truncated element");
  const tag = der[at] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used in certificates");
  let length = der[at + 1] as number;
  let body = at + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4) throw new DerError("unsupported length");
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[body + i] as number);
    body += octets;
  }
  const end = body + length;
  if (end > limit) throw new DerError("element runs past its container");
  return { tag, start: at, body, end };
}

function children(der: Bytes, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.body; at < parent.end; ) {
    const child = element(der, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

function expect(found: Element | undefined, tag: number, what: string): Element {
  if (found?.tag !== tag) throw new DerError(`${what} missing`);
  return found;
}

const hex = (der: Bytes, e: Element) =>
  Array.from(der.subarray(e.body, e.end), (b) => b.toString(16).padStart(2, "0")).join("");

// The string types a Name may hold; certificates use UTF8String and PrintableString in practice.
function text(der: Bytes, e: Element): string {
  const bytes = der.subarray(e.body, e.end);
  switch (e.tag) {
    case 0x0c:
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    case 0x13:
    case 0x14:
    case 0x16:
    case 0x1a:
      return String.fromCharCode(...bytes);
    case 0x1e:
      return new TextDecoder("utf-16be", { fatal: true }).decode(bytes);
    default:
      throw new DerError(`name attribute of string type ${e.tag}`);
  }
}

/** The last common name in the subject, as x509 libraries report it for a name with several. */
function commonName(der: Bytes, subject: Element): string | undefined {
  let found: string | undefined;
  for (const rdn of children(der, subject)) {
    for (const attribute of children(der, expect(rdn, SET, "name component"))) {
      const [type, value] = children(der, expect(attribute, SEQUENCE, "name attribute"));
      if (hex(der, expect(type, OID, "attribute type")) === COMMON_NAME && value) found = text(der, value);
    }
  }
  return found;
}

function dnsNames(der: Bytes, extensions: Element | undefined): string[] {
  if (extensions === undefined) return [];
  const [list] = children(der, extensions);
  for (const extension of children(der, expect(list, SEQUENCE, "extension list"))) {
    const parts = children(der, expect(extension, SEQUENCE, "extension"));
    if (hex(der, expect(parts[0], OID, "extension id")) !== SUBJECT_ALT_NAME) continue;
    const value = expect(parts.at(-1), OCTET_STRING, "extension value");
    const [names] = children(der, value);
    return children(der, expect(names, SEQUENCE, "subject alternative names"))
      .filter((name) => name.tag === DNS_NAME)
      .map((name) => String.fromCharCode(...der.subarray(name.body, name.end)));
  }
  return [];
}

/** Reads the names and public key of the first certificate in PEM text. */
export function signerCertificate(pem: string): SignerCertificateResult {
  const blocks = certificatesFromPem(pem);
  if (!blocks.ok) return blocks;
  const [der] = blocks.value;
  try {
    if (der === undefined) throw new DerError("no certificate");
    const certificate = expect(element(der, 0, der.length), SEQUENCE, "certificate");
    const tbs = children(der, expect(children(der, certificate)[0], SEQUENCE, "tbsCertificate"));
    // version [0], serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo, ...
    const fields = tbs[0]?.tag === VERSION ? tbs.slice(1) : tbs;
    const subject = expect(fields[4], SEQUENCE, "subject");
    const spki = expect(fields[5], SEQUENCE, "subjectPublicKeyInfo");
    const cn = commonName(der, subject);
    const dns = dnsNames(
      der,
      fields.find((field) => field.tag === EXTENSIONS),
    );
    return {
      ok: true,
      value: {
        names: [...new Set(cn === undefined ? dns : [cn, ...dns])],
        spki: der.slice(spki.start, spki.end),
      },
    };
  } catch (err) {
    if (err instanceof DerError || err instanceof TypeError)
      return { ok: false, error: `not an X.509 certificate: ${err.message}` };
    throw err;
  }
}
