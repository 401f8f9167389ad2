import * as z from "zod/mini";
import "./zod-messages.ts";
import { type Decoded, fail, type Layer, ok } from "./errors.ts";
import { depthDetail, jsonDepthExceeds, MAX_JSON_DEPTH } from "./json-depth.ts";

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses JSON text or UTF-8 bytes, reporting failure against `layer` instead of throwing. Documents nested
 * deeper than MAX_JSON_DEPTH are refused as `too_deep` before they are parsed: whatever walks the value
 * later (validation, JSON.stringify) recurses, and a few KB of brackets would overflow the stack.
 */
export function parseJson(layer: Layer, input: string | Uint8Array, maxBytes?: number): Decoded<unknown> {
  const size = typeof input === "string" ? input.length : input.byteLength;
  if (maxBytes !== undefined && size > maxBytes) {
    return fail(layer, "too_large", "", `${size} bytes is over the ${maxBytes} byte limit`);
  }
  if (jsonDepthExceeds(input, MAX_JSON_DEPTH)) return fail(layer, "too_deep", "", depthDetail());
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

/** A JSON object: what a schema's object accepts, arrays and null not included. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Checks a parsed value against a schema, reporting the first issue by its field path. */
export function validateWith<T>(layer: Layer, schema: z.core.$ZodType<T>, value: unknown): Decoded<T> {
  const result = z.safeParse(schema, value);
  if (result.success) return ok(result.data);
  const issue = result.error.issues[0]!;
  return fail(layer, "invalid_field", fieldPath(issue.path), issue.message);
}

export interface VersionedDocument<T> {
  layer: Layer;
  schema: z.core.$ZodType<T>;
  /** The protocol name this decoder reads. */
  protocol: string;
  /** Protocol names of other versions of the same document, refused as unsupported rather than invalid. */
  otherVersions: RegExp;
  maxBytes?: number;
  /**
   * Stands in for the schema where a document is opened in bulk: refuses what it refuses, naming the same
   * first field, and accepts the rest, which must then be the schema's output as it is (no transforms).
   */
  check?: (value: unknown) => FieldProblem | undefined;
}

/** The field a hand-written check refused first, and why. */
export type FieldProblem = [field: string, detail: string];

/** Parses and validates one layer of the onion that names its version in a `protocol` field. */
export function decodeVersioned<T>(input: string | Uint8Array, document: VersionedDocument<T>): Decoded<T> {
  const parsed = parseJson(document.layer, input, document.maxBytes);
  if (!parsed.ok) return parsed;
  const protocol = (parsed.value as { protocol?: unknown } | null)?.protocol;
  if (
    typeof protocol === "string" &&
    protocol !== document.protocol &&
    document.otherVersions.test(protocol)
  ) {
    return fail(
      document.layer,
      "unsupported_protocol",
      "protocol",
      `unsupported protocol version ${protocol}`,
    );
  }
  if (document.check !== undefined) {
    const problem = document.check(parsed.value);
    return problem === undefined ? ok(parsed.value as T) : fail(document.layer, "invalid_field", ...problem);
  }
  return validateWith(document.layer, document.schema, parsed.value);
}
