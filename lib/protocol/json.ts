import { type Decoded, fail, type Layer, ok } from "./errors.ts";

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Parses JSON text or UTF-8 bytes, reporting failure against `layer` instead of throwing. */
export function parseJson(layer: Layer, input: string | Uint8Array, maxBytes?: number): Decoded<unknown> {
  const size = typeof input === "string" ? input.length : input.byteLength;
  if (maxBytes !== undefined && size > maxBytes) {
    return fail(layer, "too_large", "", `${size} bytes is over the ${maxBytes} byte limit`);
  }
  let text: string;
  if (typeof input === "string") {
    text = input;
  } else {
    try {
      text = textDecoder.decode(input);
    } catch {
      return fail(layer, "malformed_json", "", "body is not valid UTF-8");
    }
  }
  try {
    return ok(JSON.parse(text));
  } catch (err) {
    return fail(layer, "malformed_json", "", `not JSON: ${(err as Error).message}`);
  }
}

/** Turns a schema issue path into the dotted field name used in errors ("headers.seen-by.0"). */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join(".");
}
