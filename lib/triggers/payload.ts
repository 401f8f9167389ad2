// A delivery's body as data. Senders post JSON, or a form: Slack slash commands are plain fields, while
// Slack interactivity (and GitHub's form content type) wraps the JSON document in one `payload` field.

import { depthDetail, jsonDepthExceeds } from "../protocol/mod.ts";

/** `tooDeep`: JSON nested deeper than MAX_JSON_DEPTH, refused before it is parsed (a bad body, not a bad type). */
export type ParsedPayload = { ok: true; payload: unknown } | { ok: false; detail: string; tooDeep?: true };

function mediaType(contentType: string | null): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

function decodeText(body: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

function parseJson(text: string, what: string): ParsedPayload {
  if (jsonDepthExceeds(text)) return { ok: false, detail: `${what} is ${depthDetail()}`, tooDeep: true };
  try {
    return { ok: true, payload: JSON.parse(text) };
  } catch {
    // The parser's message quotes the text around the error: part of the payload, so not repeated.
    return { ok: false, detail: `${what} is not JSON` };
  }
}

/** Form fields as an object; a field sent more than once becomes an array of its values. */
function formFields(text: string): Record<string, string | string[]> {
  const fields = new Map<string, string | string[]>();
  for (const [key, value] of new URLSearchParams(text)) {
    const earlier = fields.get(key);
    if (earlier === undefined) fields.set(key, value);
    else fields.set(key, Array.isArray(earlier) ? [...earlier, value] : [earlier, value]);
  }
  // fromEntries defines own properties, so a field named __proto__ stays a plain field.
  return Object.fromEntries(fields);
}

export function parsePayload(contentType: string | null, body: Uint8Array): ParsedPayload {
  const type = mediaType(contentType);
  const isJson = type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
  const isForm = type === "application/x-www-form-urlencoded";
  if (!isJson && !isForm)
    return {
      ok: false,
      // The header's value is not repeated: the field is named instead.
      detail: `${type === "" ? "no Content-Type header" : "the Content-Type header names an unsupported content type"}: send application/json or application/x-www-form-urlencoded`,
    };
  const text = decodeText(body);
  if (text === undefined) return { ok: false, detail: "the body is not UTF-8" };
  if (isJson) return parseJson(text, "the body");
  const fields = formFields(text);
  const names = Object.keys(fields);
  if (names.length === 1 && names[0] === "payload" && typeof fields.payload === "string")
    return parseJson(fields.payload, "the payload field");
  return { ok: true, payload: fields };
}
