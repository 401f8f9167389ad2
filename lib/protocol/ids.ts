import { utf8 } from "./base64.ts";

// Go's NewRequestID is a v4 UUID with the dashes removed: 32 lower-case hex characters.
const REQUEST_ID = /^[0-9a-f]{32}$/;

// go-choria extracts the certificate name from a caller id with this pattern. It is anchored only at the
// start, so trailing text after the name is ignored, exactly as Go's FindStringSubmatch does.
const CALLER_ID_CERTNAME = /^[a-z]+=([\w.-]+)/;

export function newRequestId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

export function isRequestId(text: string): boolean {
  return REQUEST_ID.test(text);
}

/** `"<type>=<name>"`, the caller id shape Choria servers expect; `choria=<certname>` by default. */
export function callerId(name: string, type = "choria"): string {
  return `${type}=${name}`;
}

/** The certificate name a caller id claims (`choria=rip.mcollective` → `rip.mcollective`), if any. */
export function certnameFromCallerId(callerid: string): string | undefined {
  return CALLER_ID_CERTNAME.exec(callerid)?.[1];
}

/** Hex md5 of the caller id: the token that makes a caller's reply subjects its private inbox. */
export function callerIdHash(callerid: string): string {
  return md5Hex(utf8(callerid));
}

// MD5 (RFC 1321). WebCrypto has no md5, and reply subjects are built synchronously on the hot path, so
// this small pure implementation stands in. It is only used to name subjects, never for security.
const SHIFTS = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
  14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15,
  21, 6, 10, 15, 21,
];
const SINES = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);

export function md5(bytes: Uint8Array): Uint8Array {
  const blocks = Math.floor((bytes.length + 8) / 64) + 1;
  const padded = new Uint8Array(blocks * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, (bytes.length * 8) >>> 0, true);
  view.setUint32(padded.length - 4, Math.floor(bytes.length / 0x20000000), true);

  let a0 = 0x67452301;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476;
  const words = new Int32Array(16);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let w = 0; w < 16; w++) words[w] = view.getInt32(offset + w * 4, true);
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let mixed: number;
      let word: number;
      if (i < 16) {
        mixed = (b & c) | (~b & d);
        word = i;
      } else if (i < 32) {
        mixed = (d & b) | (~d & c);
        word = (5 * i + 1) % 16;
      } else if (i < 48) {
        mixed = b ^ c ^ d;
        word = (3 * i + 5) % 16;
      } else {
        mixed = c ^ (b | ~d);
        word = (7 * i) % 16;
      }
      mixed = (mixed + a + SINES[i]! + words[word]!) | 0;
      const shift = SHIFTS[i]!;
      a = d;
      d = c;
      c = b;
      b = (b + ((mixed << shift) | (mixed >>> (32 - shift)))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  const digest = new Uint8Array(16);
  const out = new DataView(digest.buffer);
  out.setInt32(0, a0, true);
  out.setInt32(4, b0, true);
  out.setInt32(8, c0, true);
  out.setInt32(12, d0, true);
  return digest;
}

export function md5Hex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of md5(bytes)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
