// How deep a JSON document nests, found before it is parsed. The engines parse deep documents fine, but
// everything that walks the value afterwards (validation, rendering, JSON.stringify when a packet or a
// request is encoded) recurses, and a 10 KB document of brackets is enough to exhaust the stack. Bodies
// from HTTP callers and every document read from NATS are therefore held to a depth bound while they are
// still bytes. Pure, no I/O: the gateway, the broker, the nodes and the collectors all use it.

/** The nesting a document may have: objects and arrays inside each other, the outermost 1. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/**
 * Whether `json` nests objects and arrays deeper than `max`. One pass, no recursion, no allocation; string
 * contents are skipped with indexOf, so a large base64 member costs next to nothing. Works on UTF-8 bytes
 * as on text, since the characters it looks for are ASCII and never occur inside a multi-byte UTF-8
 * sequence. Text that is not JSON may be counted wrongly, but such text fails to parse.
 */
export function jsonDepthExceeds(json: Uint8Array | string, max = MAX_JSON_DEPTH): boolean {
  return typeof json === "string" ? textExceeds(json, max) : bytesExceeds(json, max);
}

// Two copies of one loop, for bytes and for text: each stays monomorphic on the broker's per-message
// path, where a shared loop would test the input's type at every character.
function bytesExceeds(json: Uint8Array, max: number): boolean {
  let depth = 0;
  const length = json.length;
  for (let i = 0; i < length; i++) {
    const c = json[i];
    if (c === QUOTE) {
      i = bytesStringEnd(json, i);
      if (i === -1) return false;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

function textExceeds(json: string, max: number): boolean {
  let depth = 0;
  const length = json.length;
  for (let i = 0; i < length; i++) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      i = textStringEnd(json, i);
      if (i === -1) return false;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

/** Index of the quote closing the string opened at `open`, or -1 when it never closes. */
function bytesStringEnd(json: Uint8Array, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = json.indexOf(QUOTE, from);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (json[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

function textStringEnd(json: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = json.indexOf('"', from);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (json.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** The sentence a refusal says, the same for every document. */
export function depthDetail(max = MAX_JSON_DEPTH): string {
  return `nested deeper than ${max} levels of objects and arrays (the limit is ${max})`;
}
