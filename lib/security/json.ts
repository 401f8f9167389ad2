// How deep a JSON document nests, found before it is parsed. The engines parse deep documents fine, but
// everything that walks the value afterwards (validation, rendering, JSON.stringify when the request is
// encoded) recurses, and a 20 KB body of brackets is enough to exhaust the stack. Bodies from callers are
// therefore held to a depth bound while they are still bytes.

/** The nesting a request or webhook body may have: objects and arrays inside each other, the outermost 1. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/**
 * Whether `json` nests objects and arrays deeper than `max`. One pass, no recursion, no allocation; works
 * on UTF-8 bytes as on text, since the characters it looks for are ASCII and never occur inside a
 * multi-byte UTF-8 sequence. Text that is not JSON may be counted wrongly, but such text fails to parse.
 */
export function jsonDepthExceeds(json: Uint8Array | string, max = MAX_JSON_DEPTH): boolean {
  const at = typeof json === "string" ? (i: number) => json.charCodeAt(i) : (i: number) => json[i] as number;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = at(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

/** The sentence a refusal says, the same for every body. */
export function depthDetail(max = MAX_JSON_DEPTH): string {
  return `nested deeper than ${max} levels of objects and arrays (the limit is ${max})`;
}
