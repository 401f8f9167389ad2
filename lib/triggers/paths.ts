// Dotted paths into a webhook payload: `repository.full_name`, `commits[0].id`. Parsed once at load, then
// looked up without evaluating anything; only own properties count, so `__proto__` or `constructor` name
// nothing unless the payload itself has such a key.

export type PathSegment = { key: string } | { index: number };

const SEGMENT = /^([^.[\]]+)((?:\[\d{1,9}\])*)$/;
const INDEX = /\[(\d{1,9})\]/g;

/** The segments of `a.b[0].c`, or undefined when the text is not such a path. */
export function parsePath(text: string): PathSegment[] | undefined {
  if (text === "") return undefined;
  const segments: PathSegment[] = [];
  for (const part of text.split(".")) {
    const match = SEGMENT.exec(part);
    if (!match) return undefined;
    segments.push({ key: match[1] as string });
    for (const index of (match[2] ?? "").matchAll(INDEX)) segments.push({ index: Number(index[1]) });
  }
  return segments;
}

export function lookupPath(value: unknown, segments: readonly PathSegment[]): unknown {
  let current = value;
  for (const segment of segments) {
    if ("index" in segment) {
      if (!Array.isArray(current) || segment.index >= current.length) return undefined;
      current = current[segment.index];
    } else {
      if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined;
      if (!Object.hasOwn(current, segment.key)) return undefined;
      current = (current as Record<string, unknown>)[segment.key];
    }
  }
  return current;
}

/** A field's place in parsed trigger file data, as zod reports it. */
export type DataPath = readonly PropertyKey[];

export interface Location {
  line: number;
  column: number;
}

/** `triggers[0].inputs.branch.pattern` */
export function formatPath(path: DataPath): string {
  return path
    .map((segment, index) =>
      typeof segment === "number" ? `[${segment}]` : `${index === 0 ? "" : "."}${String(segment)}`,
    )
    .join("");
}
