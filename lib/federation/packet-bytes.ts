const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Byte offsets of a string member's contents: `bytes[start]` follows the opening quote, `bytes[end]` is the closing one. */
export interface StringSpan {
  start: number;
  end: number;
}

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function skipSpace(bytes: Uint8Array, pos: number): number {
  while (isSpace(bytes[pos])) pos++;
  return pos;
}

/** Index of the quote closing the string whose opening quote is at `open`, or -1. */
function stringEnd(bytes: Uint8Array, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, from);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** Index just past the JSON value starting at `pos`, or -1; containers are only balanced, not validated. */
function valueEnd(bytes: Uint8Array, pos: number): number {
  const first = bytes[pos];
  if (first === QUOTE) {
    const end = stringEnd(bytes, pos);
    return end === -1 ? -1 : end + 1;
  }
  if (first === OPEN_OBJECT || first === OPEN_ARRAY) {
    let depth = 0;
    for (let i = pos; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === QUOTE) {
        i = stringEnd(bytes, i);
        if (i === -1) return -1;
      } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        depth++;
      } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return -1;
  }
  let i = pos;
  while (i < bytes.length && !isSpace(bytes[i]) && bytes[i] !== COMMA && bytes[i] !== CLOSE_OBJECT) i++;
  return i === pos ? -1 : i;
}

function isKey(bytes: Uint8Array, open: number, close: number, key: Uint8Array): boolean {
  if (close - open - 1 !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (bytes[open + 1 + i] !== key[i]) return false;
  return true;
}

/**
 * Finds the contents of the string member `key` of the top-level JSON object in `bytes`, without decoding
 * the rest, so that a large member can be copied through byte for byte. Undefined when the text is not an
 * object of that shape, the member is missing or not a string, or it occurs twice (an ambiguous packet).
 * Only the layout is checked here; the caller still parses everything else as JSON.
 */
export function topLevelStringSpan(bytes: Uint8Array, key: Uint8Array): StringSpan | undefined {
  let pos = skipSpace(bytes, 0);
  if (bytes[pos] !== OPEN_OBJECT) return undefined;
  pos = skipSpace(bytes, pos + 1);
  let found: StringSpan | undefined;
  let duplicate = false;
  if (bytes[pos] === CLOSE_OBJECT) return undefined;
  for (;;) {
    if (bytes[pos] !== QUOTE) return undefined;
    const keyClose = stringEnd(bytes, pos);
    if (keyClose === -1) return undefined;
    const matches = isKey(bytes, pos, keyClose, key);
    pos = skipSpace(bytes, keyClose + 1);
    if (bytes[pos] !== COLON) return undefined;
    pos = skipSpace(bytes, pos + 1);
    const end = valueEnd(bytes, pos);
    if (end === -1) return undefined;
    if (matches) {
      if (found !== undefined) duplicate = true;
      found = bytes[pos] === QUOTE ? { start: pos + 1, end: end - 1 } : undefined;
      if (found === undefined) return undefined;
    }
    pos = skipSpace(bytes, end);
    if (bytes[pos] === COMMA) {
      pos = skipSpace(bytes, pos + 1);
      continue;
    }
    if (bytes[pos] !== CLOSE_OBJECT) return undefined;
    if (skipSpace(bytes, pos + 1) !== bytes.length) return undefined;
    return duplicate ? undefined : found;
  }
}
