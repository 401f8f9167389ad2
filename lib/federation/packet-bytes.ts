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

/** One member of the top-level object: the contents of its key, and its value from first to past last byte. */
export interface Member {
  key: StringSpan;
  value: StringSpan;
}

/**
 * The members of the top-level JSON object in `bytes`, in order, found without decoding anything, so that
 * large members can be copied through byte for byte and small ones parsed alone. Undefined when the text is
 * not an object of that shape. Only the layout is checked: keys and values are still to be read as JSON.
 */
export function topLevelMembers(bytes: Uint8Array): Member[] | undefined {
  let pos = skipSpace(bytes, 0);
  if (bytes[pos] !== OPEN_OBJECT) return undefined;
  pos = skipSpace(bytes, pos + 1);
  const members: Member[] = [];
  if (bytes[pos] === CLOSE_OBJECT) return skipSpace(bytes, pos + 1) === bytes.length ? members : undefined;
  for (;;) {
    if (bytes[pos] !== QUOTE) return undefined;
    const keyClose = stringEnd(bytes, pos);
    if (keyClose === -1) return undefined;
    const key = { start: pos + 1, end: keyClose };
    pos = skipSpace(bytes, keyClose + 1);
    if (bytes[pos] !== COLON) return undefined;
    pos = skipSpace(bytes, pos + 1);
    const end = valueEnd(bytes, pos);
    if (end === -1) return undefined;
    members.push({ key, value: { start: pos, end } });
    pos = skipSpace(bytes, end);
    if (bytes[pos] === COMMA) {
      pos = skipSpace(bytes, pos + 1);
      continue;
    }
    if (bytes[pos] !== CLOSE_OBJECT) return undefined;
    return skipSpace(bytes, pos + 1) === bytes.length ? members : undefined;
  }
}

/** Whether `bytes[span.start, span.end)` are exactly `expected`. */
export function spanEquals(bytes: Uint8Array, span: StringSpan, expected: Uint8Array): boolean {
  if (span.end - span.start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[span.start + i] !== expected[i]) return false;
  return true;
}

/** Whether the key of `member` is exactly `key`, escapes not undone. */
export function isKey(bytes: Uint8Array, member: Member, key: Uint8Array): boolean {
  return spanEquals(bytes, member.key, key);
}

/**
 * The contents of the string member `key` among `members`. Undefined when it is missing or not a string,
 * or occurs twice (an ambiguous packet).
 */
export function stringMember(bytes: Uint8Array, members: Member[], key: Uint8Array): StringSpan | undefined {
  let found: StringSpan | undefined;
  for (const member of members) {
    if (!isKey(bytes, member, key)) continue;
    if (found !== undefined || bytes[member.value.start] !== QUOTE) return undefined;
    found = { start: member.value.start + 1, end: member.value.end - 1 };
  }
  return found;
}
