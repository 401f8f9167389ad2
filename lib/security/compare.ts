const utf8Encoder = new TextEncoder();

/**
 * Compares two secrets (MACs, digests, tokens) in time that depends only on their lengths, so a caller
 * cannot learn how many leading bytes of a guess were right. Strings compare by their UTF-8 bytes.
 */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const left = typeof a === "string" ? utf8Encoder.encode(a) : a;
  const right = typeof b === "string" ? utf8Encoder.encode(b) : b;
  const length = Math.max(left.length, right.length);
  let difference = left.length ^ right.length;
  for (let i = 0; i < length; i++) {
    // Out-of-range reads give undefined; `| 0` keeps the loop branch-free while still counting them.
    difference |= (left[i]! | 0) ^ (right[i]! | 0);
  }
  return difference === 0;
}
