// Every error the gateway answers with is an RFC 9457 problem document whose `type` is one of these
// URIs. They are part of the API: callers branch on them, so a kind is never renamed or reused.

export const PROBLEM_BASE = "https://choria-edge.dev/problems/";

export const PROBLEMS = {
  "missing-credentials": { status: 401, title: "No credentials" },
  "unknown-key": { status: 401, title: "Unknown key" },
  "key-expired": { status: 401, title: "Key outside its validity window" },
  "bad-signature": { status: 401, title: "Bad signature" },
  "digest-mismatch": { status: 401, title: "Content-Digest does not match the body" },
  "missing-digest": { status: 400, title: "No Content-Digest for the body" },
  "malformed-signature": { status: 400, title: "Malformed signature fields" },
  "unsupported-algorithm": { status: 400, title: "Unsupported signature algorithm" },
  "insufficient-coverage": { status: 400, title: "The signature covers too little" },
  stale: { status: 401, title: "Request outside its freshness window" },
  replay: { status: 401, title: "Request seen before" },
  "replay-store-unavailable": { status: 503, title: "Replay protection unavailable" },
  forbidden: { status: 403, title: "Forbidden by policy" },
  "invalid-body": { status: 400, title: "Invalid request body" },
  "invalid-query": { status: 400, title: "Invalid query parameters" },
  "unsupported-media-type": { status: 415, title: "Unsupported media type" },
  "payload-too-large": { status: 413, title: "Payload too large" },
  "unknown-cluster": { status: 404, title: "Unknown cluster" },
  "unknown-collective": { status: 404, title: "Unknown collective" },
  "upstream-unavailable": { status: 503, title: "NATS unavailable" },
  timeout: { status: 504, title: "NATS did not confirm the request in time" },
  "not-found": { status: 404, title: "Not found" },
  "async-unavailable": { status: 501, title: "Async requests are not enabled here" },
  "idempotency-conflict": { status: 422, title: "Idempotency-Key reused for another request" },
  "unknown-trigger": { status: 404, title: "Unknown trigger" },
  "missing-delivery-id": { status: 400, title: "The webhook names no delivery" },
  "invalid-input": { status: 422, title: "A trigger input failed its checks" },
  "unsupported-payload": { status: 415, title: "Unsupported webhook payload" },
  "lock-timeout": { status: 409, title: "A lock the trigger needs is held" },
  "data-store-unavailable": { status: 503, title: "Trigger data store unavailable" },
  "method-not-allowed": { status: 405, title: "Method not allowed" },
  // Nobody reads this one: the caller hung up before its request was complete. 499 as nginx counts it,
  // so that logs and audit lines tell a client abort from a failure of the gateway.
  "client-aborted": { status: 499, title: "The client closed the request" },
  internal: { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemKind = keyof typeof PROBLEMS;

export const PROBLEM_MEDIA_TYPE = "application/problem+json";

/** An RFC 9457 problem document; extension members carry machine-readable details. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  [extension: string]: unknown;
}

export function problemType(kind: ProblemKind): string {
  return `${PROBLEM_BASE}${kind}`;
}

export function isProblemKind(value: string): value is ProblemKind {
  return Object.hasOwn(PROBLEMS, value);
}

export function problem(
  kind: ProblemKind,
  detail: string,
  extensions: Record<string, unknown> = {},
): ProblemDocument {
  const { status, title } = PROBLEMS[kind];
  return { ...extensions, type: problemType(kind), title, status, detail };
}

/** One field that failed validation: its dotted path, its RFC 6901 pointer, and what is wrong. */
export interface FieldError {
  field: string;
  pointer: string;
  detail: string;
}

export function fieldError(path: readonly PropertyKey[], detail: string): FieldError {
  return {
    field: path.map(String).join("."),
    pointer: path.map((p) => `/${String(p).replaceAll("~", "~0").replaceAll("/", "~1")}`).join(""),
    detail,
  };
}

/** The invalid-body problem; `detail` names the first field so that a human sees it at once. */
export function invalidBody(errors: readonly FieldError[]): ProblemDocument {
  const first = errors[0];
  const detail = first
    ? `${first.field === "" ? "body" : first.field}: ${first.detail}`
    : "the body is not a valid request";
  return problem("invalid-body", detail, { errors });
}

/** A Response carrying a problem document, with extra headers (Retry-After, Allow, ...). */
export function problemResponse(doc: ProblemDocument, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(doc), {
    status: doc.status,
    headers: { "content-type": PROBLEM_MEDIA_TYPE, "cache-control": "no-store", ...headers },
  });
}
