const utf8Encoder = new TextEncoder();

/**
 * Compares two secrets (MACs, digests, tokens) in time that depends only on their lengths, so a caller
 * cannot learn how many leading bytes of a guess were right. Two strings compare by their UTF-16 code
 * units, with no encoding made (a gateway compares a hash for each of 10,000 replies), which is string
 * equality; a string and bytes compare by the string's UTF-8 bytes.
 */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  if (typeof a === "string" && typeof b === "string") return constantTimeEqualText(a, b);
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

function constantTimeEqualText(a: string, b: string): boolean {
  const length = Math.max(a.length, b.length);
  let difference = a.length ^ b.length;
  // Past the end charCodeAt gives NaN, which `| 0` turns into 0 without a branch.
  for (let i = 0; i < length; i++) difference |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return difference === 0;
}
