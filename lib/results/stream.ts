import type { ReplyEntry, RpcResult } from "./summary.ts";

/**
 * Events of a streamed request, in order: one `start` once the targets are known (after discovery), one
 * `reply` per node as it arrives, then one `summary`; or an `error` (a problem document) in place of the
 * summary when the request fails after the stream began.
 */
export type StreamEvent =
  | { type: "start"; request_id: string; discovered: number | null; expected: number | null }
  | ({ type: "reply" } & ReplyEntry)
  | ({ type: "summary" } & Omit<RpcResult, "replies">)
  | ({ type: "error" } & Record<string, unknown>);

export type ResponseFormat = "json" | "ndjson" | "sse";

export const MEDIA_TYPES: Record<ResponseFormat, string> = {
  json: "application/json",
  ndjson: "application/x-ndjson",
  sse: "text/event-stream",
};

const FORMAT_OF_MEDIA: Record<string, ResponseFormat> = {
  "application/json": "json",
  "application/x-ndjson": "ndjson",
  "text/event-stream": "sse",
};

/**
 * The response format an `Accept` header asks for: the supported media type with the highest quality,
 * the earliest listed on a tie; JSON when the header is absent, names nothing supported, or says `*∕*`.
 */
export function chooseFormat(accept: string | null | undefined): ResponseFormat {
  if (!accept) return "json";
  let best: { format: ResponseFormat; q: number } | undefined;
  for (const part of accept.split(",")) {
    const [media, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    const format = media === undefined ? undefined : FORMAT_OF_MEDIA[media];
    if (format === undefined) continue;
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!(q > 0)) continue;
    if (best === undefined || q > best.q) best = { format, q };
  }
  return best?.format ?? "json";
}

/** One event as a line of newline-delimited JSON. */
export function ndjsonLine(event: StreamEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/**
 * One event as a server-sent event named after its type. JSON.stringify escapes every line break, so the
 * data always fits the single `data:` line the format requires.
 */
export function sseFrame(event: StreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

export function encodeEvent(format: Exclude<ResponseFormat, "json">, event: StreamEvent): string {
  return format === "sse" ? sseFrame(event) : ndjsonLine(event);
}

/** The summary event for a finished request: the result without its replies, which were streamed already. */
export function summaryEvent(result: RpcResult): StreamEvent {
  const { replies: _streamed, ...rest } = result;
  return { type: "summary", ...rest };
}
