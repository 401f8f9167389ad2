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
const SHIFTS = Uint8Array.of(
  7,
  12,
  17,
  22,
  7,
  12,
  17,
  22,
  7,
  12,
  17,
  22,
  7,
  12,
  17,
  22,
  5,
  9,
  14,
  20,
  5,
  9,
  14,
  20,
  5,
  9,
  14,
  20,
  5,
  9,
  14,
  20,
  4,
  11,
  16,
  23,
  4,
  11,
  16,
  23,
  4,
  11,
  16,
  23,
  4,
  11,
  16,
  23,
  6,
  10,
  15,
  21,
  6,
  10,
  15,
  21,
  6,
  10,
  15,
  21,
  6,
  10,
  15,
  21,
);
const SINES = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
/** Which message word each of the 64 steps reads. */
const WORD_INDEX = Uint8Array.from({ length: 64 }, (_, i) =>
  i < 16 ? i : i < 32 ? (5 * i + 1) % 16 : i < 48 ? (3 * i + 5) % 16 : (7 * i) % 16,
);
const HEX_BYTES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** The md5 state words (a, b, c, d) after digesting `bytes`. */
function md5State(bytes: Uint8Array): Int32Array {
  const length = bytes.length;
  const padded = new Uint8Array((Math.floor((length + 8) / 64) + 1) * 64);
  padded.set(bytes);
  padded[length] = 0x80;
  const bitsLow = (length * 8) >>> 0;
  const bitsHigh = Math.floor(length / 0x20000000);
  for (let i = 0; i < 4; i++) {
    padded[padded.length - 8 + i] = (bitsLow >>> (8 * i)) & 0xff;
    padded[padded.length - 4 + i] = (bitsHigh >>> (8 * i)) & 0xff;
  }

  const words = new Int32Array(16);
  let a0 = 0x67452301;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476;
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let w = 0; w < 16; w++) {
      const p = offset + w * 4;
      words[w] = padded[p]! | (padded[p + 1]! << 8) | (padded[p + 2]! << 16) | (padded[p + 3]! << 24);
    }
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      const f = i < 16 ? (b & c) | (~b & d) : i < 32 ? (d & b) | (~d & c) : i < 48 ? b ^ c ^ d : c ^ (b | ~d);
      const mixed = (f + a + SINES[i]! + words[WORD_INDEX[i]!]!) | 0;
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
  return Int32Array.of(a0, b0, c0, d0);
}

/** The 16-byte md5 digest. */
export function md5(bytes: Uint8Array): Uint8Array {
  const digest = new Uint8Array(16);
  md5State(bytes).forEach((word, i) => {
    for (let b = 0; b < 4; b++) digest[i * 4 + b] = (word >>> (8 * b)) & 0xff;
  });
  return digest;
}

/** The md5 digest as 32 lower-case hex characters. */
export function md5Hex(bytes: Uint8Array): string {
  let hex = "";
  for (const word of md5State(bytes)) {
    for (let b = 0; b < 4; b++) hex += HEX_BYTES[(word >>> (8 * b)) & 0xff];
  }
  return hex;
}
