/** The layers of the Choria message onion, outermost first, plus the side formats this library parses. */
export type Layer =
  | "transport"
  | "secure_request"
  | "secure_reply"
  | "request"
  | "reply"
  | "rpc_request"
  | "rpc_reply"
  | "subject"
  | "filter";

/** Stable reason codes; callers count and log by these, so never rename one. */
export type ProtocolErrorCode =
  | "malformed_json"
  | "invalid_field"
  | "unsupported_protocol"
  | "invalid_base64"
  | "too_large"
  /** Objects and arrays nested deeper than MAX_JSON_DEPTH (lib/protocol/json-depth.ts). */
  | "too_deep"
  | "expired";

/** A decode failure that names the layer and the field, so a dropped packet can be logged usefully. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly layer: Layer,
    readonly code: ProtocolErrorCode,
    /** Dotted path of the offending field, or "" for the document as a whole. */
    readonly field: string,
    detail: string,
  ) {
    super(`${layer}${field ? `.${field}` : ""}: ${detail}`);
  }
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

export function ok<T>(value: T): Decoded<T> {
  return { ok: true, value };
}

export function fail<T = never>(
  layer: Layer,
  code: ProtocolErrorCode,
  field: string,
  detail: string,
): Decoded<T> {
  return { ok: false, error: new ProtocolError(layer, code, field, detail) };
}
