// Ed25519 signing (RFC 8032 §5.1) and the SHA-512 it hashes with (FIPS 180-4 §6.4), synchronous and small,
// for the one place that needs a signature without waiting: nats-core asks its authenticator for the
// CONNECT credentials synchronously, and an nkey login signs the server's nonce there. WebCrypto's Ed25519
// is asynchronous, and tweetnacl brings its whole box/secretbox library (~30 KiB minified) into the Worker.
// BigInt arithmetic is not constant-time; the signer runs once per NATS connection, on a nonce the server
// chose, with a seed the Worker holds.

const MASK64 = (1n << 64n) - 1n;

/** The first 64 bits of the fractional part of the `root`th root of each of the first `count` primes. */
function rootFractions(count: number, root: 2n | 3n): bigint[] {
  const primes: bigint[] = [];
  for (let n = 2n; primes.length < count; n++) if (primes.every((p) => n % p !== 0n)) primes.push(n);
  return primes.map((p) => integerRoot(p << (64n * root), root) & MASK64);
}

// Newton's method from above: the largest r with r^root <= n.
function integerRoot(n: bigint, root: bigint): bigint {
  let x = 1n << (BigInt(n.toString(2).length) / root + 1n);
  for (;;) {
    const next = ((root - 1n) * x + n / x ** (root - 1n)) / root;
    if (next >= x) return x;
    x = next;
  }
}

let constants: { k: bigint[]; h: bigint[] } | undefined;

const rotr = (x: bigint, n: bigint) => ((x >> n) | (x << (64n - n))) & MASK64;

/** The SHA-512 digest of `bytes`. */
export function sha512(bytes: Uint8Array): Uint8Array {
  constants ??= { k: rootFractions(80, 3n), h: rootFractions(8, 2n) };
  const { k } = constants;
  const h = [...constants.h];
  // Padding (§5.1.2): a 1 bit, zeros, and the length in bits in the last 128 bits of a 1024-bit block.
  const padded = new Uint8Array(Math.ceil((bytes.length + 17) / 128) * 128);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  new DataView(padded.buffer).setBigUint64(padded.length - 8, BigInt(bytes.length) * 8n);
  const view = new DataView(padded.buffer);
  const w: bigint[] = new Array(80);
  for (let block = 0; block < padded.length; block += 128) {
    for (let t = 0; t < 16; t++) w[t] = view.getBigUint64(block + t * 8);
    for (let t = 16; t < 80; t++) {
      const w15 = w[t - 15] as bigint;
      const w2 = w[t - 2] as bigint;
      const s0 = rotr(w15, 1n) ^ rotr(w15, 8n) ^ (w15 >> 7n);
      const s1 = rotr(w2, 19n) ^ rotr(w2, 61n) ^ (w2 >> 6n);
      w[t] = ((w[t - 16] as bigint) + s0 + (w[t - 7] as bigint) + s1) & MASK64;
    }
    let [a, b, c, d, e, f, g, hh] = h as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
    for (let t = 0; t < 80; t++) {
      const t1 =
        (hh +
          (rotr(e, 14n) ^ rotr(e, 18n) ^ rotr(e, 41n)) +
          ((e & f) ^ (~e & g)) +
          (k[t] as bigint) +
          (w[t] as bigint)) &
        MASK64;
      const t2 = ((rotr(a, 28n) ^ rotr(a, 34n) ^ rotr(a, 39n)) + ((a & b) ^ (a & c) ^ (b & c))) & MASK64;
      [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) & MASK64, c, b, a, (t1 + t2) & MASK64];
    }
    for (const [i, v] of [a, b, c, d, e, f, g, hh].entries()) h[i] = ((h[i] as bigint) + v) & MASK64;
  }
  const out = new Uint8Array(64);
  const outView = new DataView(out.buffer);
  for (const [i, v] of h.entries()) outView.setBigUint64(i * 8, v);
  return out;
}

// Curve25519 in twisted Edwards form, -x^2 + y^2 = 1 + d x^2 y^2 over GF(P) (RFC 8032 §5.1).
const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  for (let b = mod(base), e = exponent; e > 0n; e >>= 1n, b = (b * b) % P)
    if (e & 1n) result = (result * b) % P;
  return result;
}

const inverse = (a: bigint) => power(a, P - 2n);

/** Extended homogeneous coordinates (§5.1.4): x = X/Z, y = Y/Z, x*y = T/Z. */
type Point = readonly [x: bigint, y: bigint, z: bigint, t: bigint];

// The unified addition formula (§5.1.4): complete for this curve, so it doubles too.
function add(d: bigint, [x1, y1, z1, t1]: Point, [x2, y2, z2, t2]: Point): Point {
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(2n * d * t1 * t2);
  const dd = mod(2n * z1 * z2);
  const [e, f, g, h] = [b - a, dd - c, dd + c, b + a];
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

// The constant d, and the base point times 2^i for every bit of a scalar below 2^255 (a multiplication
// is then only additions); made by the first signature, not by every isolate that loads the bundle.
let curve: { d: bigint; doublings: Point[] } | undefined;

function curveConstants(): { d: bigint; doublings: Point[] } {
  if (curve) return curve;
  const d = mod(-121665n * inverse(121666n));
  // The base point (§5.1): y = 4/5, and x from y (§5.1.3), the even root.
  const y = mod(4n * inverse(5n));
  const u = mod(y * y - 1n);
  const v = mod(d * y * y + 1n);
  let x = mod(u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n));
  if (mod(v * x * x) !== u) x = mod(x * power(2n, (P - 1n) / 4n));
  if (x & 1n) x = P - x;
  const doublings: Point[] = [[x, y, 1n, mod(x * y)]];
  for (let last = doublings[0] as Point; doublings.length < 255; doublings.push(last))
    last = add(d, last, last);
  curve = { d, doublings };
  return curve;
}

function multiplyBase(scalar: bigint): Point {
  const { d, doublings } = curveConstants();
  let result: Point = [0n, 1n, 1n, 0n];
  for (const [i, point] of doublings.entries())
    if ((scalar >> BigInt(i)) & 1n) result = add(d, result, point);
  return result;
}

// §5.1.2: y little-endian, the sign of x in the top bit.
function encodePoint([x, y, z]: Point): Uint8Array {
  const zInverse = inverse(z);
  const affineY = mod(y * zInverse);
  const bytes = littleEndian(affineY);
  if (mod(x * zInverse) & 1n) bytes[31] = (bytes[31] as number) | 0x80;
  return bytes;
}

function littleEndian(n: bigint): Uint8Array {
  const bytes = new Uint8Array(32);
  for (let i = 0, v = n; i < 32; i++, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return bytes;
}

const fromLittleEndian = (bytes: Uint8Array) => bytes.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);

// Inputs are a nonce and a few keys: copying through an array costs nothing worth a helper.
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((part) => [...part]));

const hashScalar = (...parts: Uint8Array[]) => mod(fromLittleEndian(sha512(concat(...parts))), L);

export interface Ed25519Signer {
  readonly publicKey: Uint8Array;
  /** The 64-byte signature of `message` (deterministic: the same message gives the same bytes). */
  sign(message: Uint8Array): Uint8Array;
}

/** The key pair of a 32-byte private key (an nkey seed's payload), as §5.1.5 derives it. */
export function ed25519FromSeed(seed: Uint8Array): Ed25519Signer {
  if (seed.length !== 32) throw new Error("an Ed25519 private key is 32 bytes");
  const h = sha512(seed);
  const clamped = h.slice(0, 32);
  clamped[0] = (clamped[0] as number) & 248;
  clamped[31] = ((clamped[31] as number) & 127) | 64;
  const secret = fromLittleEndian(clamped);
  const prefix = h.slice(32);
  const publicKey = encodePoint(multiplyBase(secret));
  return {
    publicKey,
    sign(message) {
      // §5.1.6
      const r = hashScalar(prefix, message);
      const encodedR = encodePoint(multiplyBase(r));
      const k = hashScalar(encodedR, publicKey, message);
      return concat(encodedR, littleEndian(mod(r + k * secret, L)));
    },
  };
}
