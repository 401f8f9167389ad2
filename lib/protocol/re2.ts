// Regular expressions as Choria servers run them: Go's RE2 syntax (no backreferences, no lookaround) on a
// linear-time engine, so a pattern that arrives in a request or a trigger file cannot tie up a process the
// way a backtracking engine can be made to. `re2js` is a pure JavaScript port of RE2 with Go's syntax and
// flags; it has no native code, so it runs in workerd as well as in Node.
import { RE2JS } from "re2js";

/** Longest pattern accepted, in UTF-16 code units. */
export const MAX_REGEX_LENGTH = 1024;
/** Largest compiled program accepted (RE2's rough cost measure: instructions). */
const MAX_REGEX_PROGRAM_SIZE = 5000;

/** A compiled RE2 pattern: `test` looks for a match anywhere in the text, as Go's MatchString does. */
export interface Re2Regex {
  readonly source: string;
  test(text: string): boolean;
}

export type Re2Compiled = { ok: true; regex: Re2Regex } | { ok: false; reason: string };

// Patterns repeat (the same filter on every request, a trigger's pattern on every delivery), so compiled
// results are kept; the cache is emptied when it fills, which bounds memory without bookkeeping.
const CACHE_LIMIT = 512;
const cache = new Map<string, Re2Compiled>();

/**
 * Compiles `source` with Go's regexp syntax (Perl flags: `(?i)`, `(?s)`, `\pL`, `[[:alpha:]]`, `\z`, ...).
 * Refuses what RE2 refuses (backreferences, lookahead, lookbehind, repeat counts over 1000) and patterns
 * over the size bounds, with a reason that names the problem.
 */
export function compileRe2(source: string): Re2Compiled {
  const cached = cache.get(source);
  if (cached) return cached;
  const compiled = compileUncached(source);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(source, compiled);
  return compiled;
}

function compileUncached(source: string): Re2Compiled {
  if (source.length > MAX_REGEX_LENGTH)
    return { ok: false, reason: `longer than ${MAX_REGEX_LENGTH} characters` };
  let engine: RE2JS;
  try {
    engine = RE2JS.compile(source);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: message.replace(/^error parsing regexp: /, "") };
  }
  if (engine.programSize() > MAX_REGEX_PROGRAM_SIZE)
    return { ok: false, reason: `too large: more than ${MAX_REGEX_PROGRAM_SIZE} instructions once compiled` };
  return { ok: true, regex: { source, test: (text: string) => engine.test(text) } };
}

/** The compiled pattern, or undefined when it is not valid RE2 or is too large. */
export function re2OrUndefined(source: string): Re2Regex | undefined {
  const compiled = compileRe2(source);
  return compiled.ok ? compiled.regex : undefined;
}

/** The pattern written as a `/.../` literal, each unescaped `/` escaped, as JavaScript's RegExp shows it. */
export function regexLiteral(regex: Re2Regex): string {
  let out = "";
  let escaped = false;
  for (const char of regex.source) {
    out += char === "/" && !escaped ? "\\/" : char;
    escaped = !escaped && char === "\\";
  }
  return `/${out}/`;
}
