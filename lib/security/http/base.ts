// The RFC 9421 signature base (§2.5): one line per covered component, then the signature parameters.
// Signer and verifier both build it here, so they cannot disagree on a detail.
import { type InnerList, type Item, type Parsed, serializeInnerList, serializeItem } from "./structured.ts";

/** The request as every runtime adapter can describe it: the body exactly as received. */
export interface HttpRequestParts {
  method: string;
  /** Absolute URL as the caller addressed it (behind a proxy: the public URL, not the internal one). */
  url: string;
  headers: Headers;
  body: Uint8Array;
}

/** Derived components this side computes (§2.2); `@query-param` and the response ones are not supported. */
const DERIVED_COMPONENTS = [
  "@method",
  "@target-uri",
  "@authority",
  "@scheme",
  "@request-target",
  "@path",
  "@query",
] as const;
type DerivedComponent = (typeof DERIVED_COMPONENTS)[number];

const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** The value of one covered component, or why it has none. */
function componentValue(request: HttpRequestParts, url: URL, component: Item): Parsed<string> {
  const name = component.value;
  if (typeof name !== "string") return { ok: false, error: "a covered component is not a string" };
  if (component.params.size > 0)
    return { ok: false, error: `component parameters (on ${JSON.stringify(name)}) are not supported` };
  if (name.startsWith("@")) {
    if (!(DERIVED_COMPONENTS as readonly string[]).includes(name))
      return { ok: false, error: `derived component ${JSON.stringify(name)} is not supported` };
    return { ok: true, value: derivedValue(request, url, name as DerivedComponent) };
  }
  if (!FIELD_NAME.test(name))
    return { ok: false, error: `${JSON.stringify(name)} is not a lowercase field name` };
  const value = request.headers.get(name);
  if (value === null) return { ok: false, error: `covered field ${name} is missing` };
  // Headers has already trimmed each line and joined repeated lines with ", ", as §2.1 asks.
  return { ok: true, value };
}

function derivedValue(request: HttpRequestParts, url: URL, name: DerivedComponent): string {
  switch (name) {
    case "@method":
      return request.method;
    case "@target-uri":
      return url.href;
    case "@authority":
      // WHATWG URL lowercases the host and drops the scheme's default port, the normalisation §2.2.3 asks.
      return url.host;
    case "@scheme":
      return url.protocol.slice(0, -1);
    case "@request-target":
      return `${url.pathname}${url.search}`;
    case "@path":
      return url.pathname === "" ? "/" : url.pathname;
    case "@query":
      return url.search === "" ? "?" : url.search;
  }
}

/**
 * The signature base for `input` (the covered components and signature parameters of one signature),
 * or why it cannot be built: an unsupported or missing component, or a component listed twice.
 */
export function signatureBase(request: HttpRequestParts, input: InnerList): Parsed<string> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return { ok: false, error: "the request URL is not absolute" };
  }
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const component of input.items) {
    const identifier = serializeItem(component);
    if (seen.has(identifier)) return { ok: false, error: `component ${identifier} is covered twice` };
    seen.add(identifier);
    const value = componentValue(request, url, component);
    if (!value.ok) return value;
    lines.push(`${identifier}: ${value.value}`);
  }
  lines.push(`"@signature-params": ${serializeInnerList(input)}`);
  return { ok: true, value: lines.join("\n") };
}
