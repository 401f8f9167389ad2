// RFC 8941 Structured Field Values, the subset HTTP Message Signatures (RFC 9421) and Content-Digest
// (RFC 9530) need: dictionaries, inner lists, parameters, integers, decimals, strings, tokens, byte
// sequences and booleans. Stricter than the RFC in one way: a repeated dictionary key or parameter is an
// error instead of "last one wins", because two readers of one header must never disagree on its meaning.
import { encodeBase64 } from "../../protocol/mod.ts";
import { type Bytes, base64Bytes } from "../mod.ts";

/** An sf-token, kept apart from sf-string because the two serialise differently. */
export class Token {
  constructor(readonly value: string) {}
}

export type BareItem = string | number | boolean | Bytes | Token;
/** Parameters in the order they were written; the order is part of the serialisation. */
export type Parameters = Map<string, BareItem>;
export interface Item {
  value: BareItem;
  params: Parameters;
}
export interface InnerList {
  items: Item[];
  params: Parameters;
}
export type Dictionary = Map<string, Item | InnerList>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export function isInnerList(member: Item | InnerList): member is InnerList {
  return "items" in member;
}

export function isBytes(value: BareItem): value is Bytes {
  return value instanceof Uint8Array;
}

class SyntaxFailure extends Error {}

const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;
const TOKEN_START = /[A-Za-z*]/;
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;
const BASE64_CHAR = /[A-Za-z0-9+/=]/;
const DIGIT = /[0-9]/;

class Reader {
  position = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.position >= this.text.length;
  }

  peek(): string {
    return this.text[this.position] ?? "";
  }

  next(): string {
    const char = this.peek();
    this.position++;
    return char;
  }

  skip(chars: string): void {
    while (!this.done && chars.includes(this.peek())) this.position++;
  }

  fail(what: string): never {
    throw new SyntaxFailure(`${what} at character ${this.position}`);
  }
}

function parseWhole<T>(text: string, parse: (reader: Reader) => T): Parsed<T> {
  const reader = new Reader(text);
  try {
    reader.skip(" ");
    const value = parse(reader);
    reader.skip(" ");
    if (!reader.done) reader.fail("unexpected character");
    return { ok: true, value };
  } catch (err) {
    if (err instanceof SyntaxFailure) return { ok: false, error: err.message };
    throw err;
  }
}

/** Parses a dictionary field value (RFC 8941 §4.2.2). Errors name a position, never the field's content. */
export function parseDictionary(text: string): Parsed<Dictionary> {
  return parseWhole(text, (reader) => {
    const dictionary: Dictionary = new Map();
    while (!reader.done) {
      const key = parseKey(reader);
      if (dictionary.has(key)) reader.fail(`repeated key ${JSON.stringify(key)}`);
      if (reader.peek() === "=") {
        reader.next();
        dictionary.set(key, parseItemOrInnerList(reader));
      } else {
        dictionary.set(key, { value: true, params: parseParameters(reader) });
      }
      reader.skip(" \t");
      if (reader.done) break;
      if (reader.next() !== ",") reader.fail("expected ','");
      reader.skip(" \t");
      if (reader.done) reader.fail("trailing ','");
    }
    return dictionary;
  });
}

function parseItemOrInnerList(reader: Reader): Item | InnerList {
  return reader.peek() === "(" ? parseInnerList(reader) : parseItemAt(reader);
}

function parseInnerList(reader: Reader): InnerList {
  reader.next();
  const items: Item[] = [];
  for (;;) {
    reader.skip(" ");
    if (reader.done) reader.fail("unterminated inner list");
    if (reader.peek() === ")") {
      reader.next();
      return { items, params: parseParameters(reader) };
    }
    items.push(parseItemAt(reader));
    const after = reader.peek();
    if (after !== " " && after !== ")") reader.fail("expected ' ' or ')' in inner list");
  }
}

function parseItemAt(reader: Reader): Item {
  const value = parseBareItem(reader);
  return { value, params: parseParameters(reader) };
}

function parseParameters(reader: Reader): Parameters {
  const params: Parameters = new Map();
  while (reader.peek() === ";") {
    reader.next();
    reader.skip(" ");
    const key = parseKey(reader);
    if (params.has(key)) reader.fail(`repeated parameter ${JSON.stringify(key)}`);
    let value: BareItem = true;
    if (reader.peek() === "=") {
      reader.next();
      value = parseBareItem(reader);
    }
    params.set(key, value);
  }
  return params;
}

function parseKey(reader: Reader): string {
  if (!KEY_START.test(reader.peek())) reader.fail("expected a key");
  let key = reader.next();
  while (!reader.done && KEY_CHAR.test(reader.peek())) key += reader.next();
  return key;
}

function parseBareItem(reader: Reader): BareItem {
  const first = reader.peek();
  if (first === "-" || DIGIT.test(first)) return parseNumber(reader);
  if (first === '"') return parseString(reader);
  if (first === ":") return parseByteSequence(reader);
  if (first === "?") return parseBoolean(reader);
  if (TOKEN_START.test(first)) return parseToken(reader);
  return reader.fail("expected an item");
}

function parseNumber(reader: Reader): number {
  let text = "";
  if (reader.peek() === "-") text += reader.next();
  if (!DIGIT.test(reader.peek())) reader.fail("expected a digit");
  let integerDigits = 0;
  while (DIGIT.test(reader.peek())) {
    text += reader.next();
    if (++integerDigits > 15) reader.fail("integer longer than 15 digits");
  }
  if (reader.peek() !== ".") return Number(text);
  if (integerDigits > 12) reader.fail("decimal with more than 12 integer digits");
  text += reader.next();
  let fractionDigits = 0;
  while (DIGIT.test(reader.peek())) {
    text += reader.next();
    if (++fractionDigits > 3) reader.fail("decimal with more than 3 fraction digits");
  }
  if (fractionDigits === 0) reader.fail("decimal without fraction digits");
  return Number(text);
}

function parseString(reader: Reader): string {
  reader.next();
  let value = "";
  for (;;) {
    if (reader.done) reader.fail("unterminated string");
    const char = reader.next();
    if (char === '"') return value;
    if (char === "\\") {
      const escaped = reader.next();
      if (escaped !== '"' && escaped !== "\\") reader.fail("bad escape in string");
      value += escaped;
      continue;
    }
    const code = char.charCodeAt(0);
    if (code < 0x20 || code > 0x7e) reader.fail("non-printable character in string");
    value += char;
  }
}

function parseToken(reader: Reader): Token {
  let value = reader.next();
  while (!reader.done && TOKEN_CHAR.test(reader.peek())) value += reader.next();
  return new Token(value);
}

function parseByteSequence(reader: Reader): Bytes {
  reader.next();
  let encoded = "";
  for (;;) {
    if (reader.done) reader.fail("unterminated byte sequence");
    const char = reader.next();
    if (char === ":") break;
    if (!BASE64_CHAR.test(char)) reader.fail("bad character in byte sequence");
    encoded += char;
  }
  // RFC 8941 asks parsers to accept a missing '=' padding; everything else must be exact base64.
  const padded = encoded.includes("=") ? encoded : encoded.padEnd(Math.ceil(encoded.length / 4) * 4, "=");
  const bytes = base64Bytes(padded);
  if (bytes === undefined) reader.fail("byte sequence is not base64");
  return bytes;
}

function parseBoolean(reader: Reader): boolean {
  reader.next();
  const char = reader.next();
  if (char === "1") return true;
  if (char === "0") return false;
  return reader.fail("expected ?0 or ?1");
}

// --- serialisation (RFC 8941 §4.1) ----------------------------------------------------------------------

/** Serialises a bare item; throws on values no header could carry (a bug in the caller, not bad input). */
function serializeBareItem(value: BareItem): string {
  if (typeof value === "boolean") return value ? "?1" : "?0";
  if (typeof value === "number") {
    if (!Number.isInteger(value) || Math.abs(value) > 999_999_999_999_999)
      throw new RangeError("only integers up to 15 digits are serialised");
    return String(value);
  }
  if (typeof value === "string") {
    if (!/^[\x20-\x7e]*$/.test(value)) throw new RangeError("sf-string must be printable ASCII");
    return `"${value.replace(/[\\"]/g, "\\$&")}"`;
  }
  if (value instanceof Token) return value.value;
  return `:${encodeBase64(value)}:`;
}

function serializeParameters(params: Parameters): string {
  let text = "";
  for (const [key, value] of params) {
    text += `;${key}`;
    if (value !== true) text += `=${serializeBareItem(value)}`;
  }
  return text;
}

export function serializeItem(item: Item): string {
  return serializeBareItem(item.value) + serializeParameters(item.params);
}

export function serializeInnerList(list: InnerList): string {
  return `(${list.items.map(serializeItem).join(" ")})${serializeParameters(list.params)}`;
}

export function serializeDictionary(dictionary: Dictionary): string {
  return [...dictionary]
    .map(([key, member]) => {
      if (isInnerList(member)) return `${key}=${serializeInnerList(member)}`;
      if (member.value === true) return `${key}${serializeParameters(member.params)}`;
      return `${key}=${serializeItem(member)}`;
    })
    .join(", ");
}
