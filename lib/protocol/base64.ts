// Choria encodes with Go's base64.StdEncoding: "+/" alphabet, padding required. Go's decoder skips
// CR and LF, and the legacy Ruby signer wrapped at 60 columns, so line breaks are the only tolerance.
const LINE_BREAKS = /[\r\n]/g;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// Each character's six bits, or -1 for a character outside the alphabet ("=" included).
const SEXTETS = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) SEXTETS[ALPHABET.charCodeAt(i)] = i;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

function sextet(text: string, at: number): number {
  const code = text.charCodeAt(at);
  return code < 128 ? (SEXTETS[code] ?? -1) : -1;
}

/**
 * Decodes padded standard base64, or returns undefined when the text is not exactly that. Checked and
 * decoded in one pass over a table: every reply a gateway collects has a base64 layer, and a pattern
 * test, atob and a copy of its string cost several times this.
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  const clean = text.includes("\n") || text.includes("\r") ? text.replace(LINE_BREAKS, "") : text;
  const length = clean.length;
  if (length % 4 !== 0) return undefined;
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  const bytes = new Uint8Array((length / 4) * 3 - padding);
  let out = 0;
  for (let at = 0; at < length; at += 4) {
    const last = at + 4 === length;
    const a = sextet(clean, at);
    const b = sextet(clean, at + 1);
    const c = last && padding === 2 ? 0 : sextet(clean, at + 2);
    const d = last && padding > 0 ? 0 : sextet(clean, at + 3);
    if ((a | b | c | d) < 0) return undefined;
    const group = (a << 18) | (b << 12) | (c << 6) | d;
    bytes[out++] = group >>> 16;
    if (out < bytes.length) bytes[out++] = (group >>> 8) & 0xff;
    if (out < bytes.length) bytes[out++] = group & 0xff;
  }
  return bytes;
}

export function encodeBase64(bytes: Uint8Array): string {
  // `apply` takes the typed array as it is; a spread (`...bytes`) walks an iterator first and made this
  // six times slower, a tenth of a millisecond for each request the gateway signs. The chunk keeps the
  // argument count far below every engine's limit.
  let binary = "";
  const chunk = 0x2000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk) as unknown as number[]);
  }
  return btoa(binary);
}

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Strict UTF-8 decode; returns undefined for invalid byte sequences instead of inserting U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function encodeBase64Text(text: string): string {
  return encodeBase64(utf8(text));
}

// What atob skips besides CR and LF (the HTML spec's ASCII whitespace), and so must refuse itself.
const OTHER_WHITESPACE = /[\t\f ]/;
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * Decodes base64 that must carry UTF-8 text (such as the JSON inside a transport), to decodeBase64's
 * verdicts. Every reply has this layer, and the engine's atob is several times faster than the table walk
 * over a kilobyte; it forgives missing padding and whitespace, which are refused before it runs.
 */
export function decodeBase64Text(text: string): string | undefined {
  const clean = text.includes("\n") || text.includes("\r") ? text.replace(LINE_BREAKS, "") : text;
  if (clean.length % 4 !== 0 || OTHER_WHITESPACE.test(clean)) return undefined;
  let binary: string;
  try {
    binary = atob(clean);
  } catch {
    return undefined;
  }
  // ASCII bytes are their own text; anything else goes through the strict decoder.
  if (!NON_ASCII.test(binary)) return binary;
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return fromUtf8(bytes);
}
