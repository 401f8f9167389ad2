// Stands in for @nats-io/nkeys in the Worker bundle (wrangler.toml's [alias]; infra/build.ts reads it too):
// nats-core is CommonJS, so esbuild keeps every module it requires, and its authenticators require nkeys,
// which requires tweetnacl — about 16 KiB of the gzip bundle (this file and noble: about 6) for one
// signature per connection. nats-core calls only `fromSeed(seed).getPublicKey()`, `.sign(nonce)` and
// `encode(signature)`; this is that, for user, account, server, cluster and operator seeds. The signature
// must be synchronous (nats-core asks for the CONNECT credentials without waiting), so WebCrypto's Ed25519
// cannot serve; the audited noble libraries can, once given their SHA-512.
import * as ed from "@noble/ed25519";
import { sha512 } from "@noble/hashes/sha2.js";

ed.hashes.sha512 = sha512;

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
// Version bytes (nkeys' Prefix): a seed's first five bits, and the roles whose keys sign.
const SEED_PREFIX = 18 << 3;
const SIGNING_ROLES = new Set([0, 2, 13, 14, 20].map((letter) => letter << 3));

function base32Decode(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    const index = BASE32.indexOf(char);
    if (index < 0) throw new Error("nkey: not base32");
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

function base32Encode(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    for (; bits >= 5; bits -= 5) out += BASE32[(value >> (bits - 5)) & 31];
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
}

// CRC-16/XMODEM, stored little-endian after the payload.
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function withChecksum(payload: Uint8Array): Uint8Array {
  const crc = crc16(payload);
  return Uint8Array.from([...payload, crc & 0xff, crc >> 8]);
}

export interface KeyPair {
  getPublicKey(): string;
  sign(input: Uint8Array): Uint8Array;
}

/** The key pair of an nkey seed (`SU...` for a user), given as its ASCII bytes as nats-core passes it. */
export function fromSeed(seed: Uint8Array): KeyPair {
  const raw = base32Decode(new TextDecoder().decode(seed));
  const payload = raw.subarray(0, raw.length - 2);
  if (raw.length !== 36 || withChecksum(payload).some((byte, i) => byte !== raw[i]))
    throw new Error("nkey: not a seed, or its checksum is wrong");
  const [first = 0, second = 0] = payload;
  const role = ((first & 7) << 5) | (second >> 3);
  if ((first & 0xf8) !== SEED_PREFIX || !SIGNING_ROLES.has(role))
    throw new Error("nkey: not the seed of a signing key");
  const secret = payload.slice(2);
  const publicKey = base32Encode(withChecksum(Uint8Array.from([role, ...ed.getPublicKey(secret)])));
  return { getPublicKey: () => publicKey, sign: (input) => ed.sign(input, secret) };
}

/** Standard base64, as nkeys encodes a signature for the CONNECT line. */
export function encode(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
