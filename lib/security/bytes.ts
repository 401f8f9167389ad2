import { decodeBase64 } from "../protocol/mod.ts";

/** Bytes backed by a plain ArrayBuffer, which is what WebCrypto's BufferSource takes since TS 5.7. */
export type Bytes = Uint8Array<ArrayBuffer>;

const utf8Encoder = new TextEncoder();

export function utf8Bytes(text: string): Bytes {
  return utf8Encoder.encode(text);
}

/** Padded standard base64 (CR/LF skipped) to bytes, or undefined when the text is not that. */
export function base64Bytes(text: string): Bytes | undefined {
  // decodeBase64 always allocates a fresh ArrayBuffer; its declared type is just the wider default.
  return decodeBase64(text) as Bytes | undefined;
}
