// `${inputs.NAME}` in the strings of a trigger's request, lock names and data writes. A string that is
// exactly one placeholder takes the input's typed value; anywhere else the value is written as text.

export type TemplatePart = string | { input: string };

const PLACEHOLDER = /\$\{([^}]*)\}/g;
const INPUT_REFERENCE = /^inputs\.([A-Za-z0-9_-]{1,64})$/;

export type ParsedTemplate = { ok: true; parts: TemplatePart[] } | { ok: false; error: string };

/** Every `${...}` must name an input: a typo such as `${input.x}` is refused rather than sent as is. */
export function parseTemplate(text: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    const reference = INPUT_REFERENCE.exec(match[1] ?? "");
    if (!reference) return { ok: false, error: `${match[0]} is not a placeholder: write \${inputs.NAME}` };
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push({ input: reference[1] as string });
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return { ok: true, parts };
}

export function templateInputs(parts: readonly TemplatePart[]): string[] {
  return parts.flatMap((part) => (typeof part === "string" ? [] : [part.input]));
}

function renderTemplate(parts: readonly TemplatePart[], inputs: Readonly<Record<string, unknown>>): unknown {
  const [only] = parts;
  if (parts.length === 1 && only !== undefined && typeof only !== "string") return inputs[only.input];
  return parts.map((part) => (typeof part === "string" ? part : String(inputs[part.input]))).join("");
}

export function renderText(
  parts: readonly TemplatePart[],
  inputs: Readonly<Record<string, unknown>>,
): string {
  return String(renderTemplate(parts, inputs));
}

/** Every string inside a JSON-like value, with its path, so each can be checked against the inputs. */
export function stringsIn(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; text: string }[] {
  if (typeof value === "string") return [{ path, text: value }];
  if (Array.isArray(value)) return value.flatMap((item, index) => stringsIn(item, [...path, index]));
  if (typeof value === "object" && value !== null)
    return Object.entries(value).flatMap(([key, item]) => stringsIn(item, [...path, key]));
  return [];
}

/** A copy of a JSON-like value with every string rendered. Templates were checked at load. */
export function renderValue(value: unknown, inputs: Readonly<Record<string, unknown>>): unknown {
  if (typeof value === "string") {
    const parsed = parseTemplate(value);
    return parsed.ok ? renderTemplate(parsed.parts, inputs) : value;
  }
  if (Array.isArray(value)) return value.map((item) => renderValue(item, inputs));
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, renderValue(item, inputs)]));
  return value;
}
