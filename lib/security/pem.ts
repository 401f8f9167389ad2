import { encodeBase64 } from "../protocol/mod.ts";
import { type Bytes, base64Bytes } from "./bytes.ts";

/** Parsing outcome; PEM comes from configuration and from the wire, so bad input is a value, not a throw. */
export type PemResult<T> = { ok: true; value: T } | { ok: false; error: string };

export interface PemBlock {
  /** The type from the BEGIN line, e.g. "CERTIFICATE" or "RSA PRIVATE KEY". */
  label: string;
  der: Bytes;
}

// Text outside the armour is ignored, as OpenSSL and Go do: bundles often carry "Bag Attributes" or
// "subject=" lines between certificates.
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const WHITESPACE = /\s+/g;

/** Splits PEM text into its blocks, in order. Fails on a block with headers (encrypted) or bad base64. */
export function parsePem(text: string): PemResult<PemBlock[]> {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const [, label, body, endLabel] = match as unknown as [string, string, string, string];
    if (label !== endLabel) return { ok: false, error: `PEM block BEGIN ${label} ends with END ${endLabel}` };
    if (body.includes(":")) {
      return { ok: false, error: `PEM block ${label} has headers; encrypted PEM is not supported` };
    }
    const der = base64Bytes(body.replace(WHITESPACE, ""));
    if (der === undefined || der.length === 0) {
      return { ok: false, error: `PEM block ${label} does not hold valid base64` };
    }
    blocks.push({ label, der });
  }
  if (blocks.length === 0) return { ok: false, error: "no PEM block found" };
  return { ok: true, value: blocks };
}

/** DER of every CERTIFICATE block, in file order; fails when there is none. */
export function certificatesFromPem(text: string): PemResult<Bytes[]> {
  const parsed = parsePem(text);
  if (!parsed.ok) return parsed;
  const certificates = parsed.value.filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  if (certificates.length === 0) return { ok: false, error: "no CERTIFICATE block found" };
  return { ok: true, value: certificates };
}

/** Splits a CA bundle into one PEM text per certificate, re-armoured canonically. */
export function splitCertificateBundle(text: string): PemResult<string[]> {
  const certificates = certificatesFromPem(text);
  if (!certificates.ok) return certificates;
  return { ok: true, value: certificates.value.map((der) => encodePem("CERTIFICATE", der)) };
}

/** Armours DER as PEM with 64-column lines and a trailing newline, as OpenSSL and Go write it. */
export function encodePem(label: string, der: Uint8Array): string {
  const body = encodeBase64(der).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/**
 * The PKCS#8 DER of the first private key in `text`, which WebCrypto can import. Accepts "PRIVATE KEY"
 * (PKCS#8) and "RSA PRIVATE KEY" (PKCS#1, what Puppet and older OpenSSL write), the two forms Choria loads.
 */
export function pkcs8FromPem(text: string): PemResult<Bytes> {
  const parsed = parsePem(text);
  if (!parsed.ok) return parsed;
  for (const block of parsed.value) {
    if (block.label === "PRIVATE KEY") return { ok: true, value: block.der };
    if (block.label === "RSA PRIVATE KEY") return { ok: true, value: wrapPkcs1RsaKey(block.der) };
    if (block.label === "ENCRYPTED PRIVATE KEY") {
      return { ok: false, error: "encrypted private keys are not supported" };
    }
    if (block.label.endsWith("PRIVATE KEY")) {
      return { ok: false, error: `${block.label} is not supported; Choria v1 signs with RSA keys` };
    }
  }
  return { ok: false, error: "no PRIVATE KEY or RSA PRIVATE KEY block found" };
}

// PKCS#8 PrivateKeyInfo ::= SEQUENCE { version INTEGER 0, AlgorithmIdentifier, privateKey OCTET STRING }
// with AlgorithmIdentifier = SEQUENCE { rsaEncryption OID 1.2.840.113549.1.1.1, NULL }.
const PKCS8_VERSION_0 = hexBytes("020100");
const RSA_ENCRYPTION_ALGORITHM = hexBytes("300d06092a864886f70d0101010500");
const DER_SEQUENCE = 0x30;
const DER_OCTET_STRING = 0x04;

/** Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo, since WebCrypto imports only the latter. */
export function wrapPkcs1RsaKey(pkcs1: Uint8Array): Bytes {
  return derElement(
    DER_SEQUENCE,
    concatBytes(PKCS8_VERSION_0, RSA_ENCRYPTION_ALGORITHM, derElement(DER_OCTET_STRING, pkcs1)),
  );
}

function derElement(tag: number, content: Uint8Array): Bytes {
  return concatBytes(Uint8Array.of(tag), derLength(content.length), content);
}

function derLength(length: number): Bytes {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function concatBytes(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function hexBytes(hex: string): Bytes {
  return Uint8Array.from(hex.match(/../g)!, (pair) => Number.parseInt(pair, 16));
}
