import * as z from "zod/mini";
import { type Decoded, fail, ok } from "./errors.ts";
import { isRecord, validateWith } from "./json.ts";
import { compileRe2, re2OrUndefined } from "./re2.ts";

export const FACT_OPERATORS = [">=", "<=", "<", ">", "!=", "==", "=~"] as const;
export type FactOperator = (typeof FACT_OPERATORS)[number];

const factFilterSchema = z.looseObject({
  fact: z.string().check(z.minLength(1)),
  operator: z.enum(FACT_OPERATORS),
  value: z.string().check(z.minLength(1)),
});

// Go emits every array, but a nil slice marshals as `null` and older senders may leave keys out; all of
// those mean "no constraint", so they decode as empty arrays.
function list<T extends z.ZodMiniType>(item: T) {
  return z.pipe(
    z.nullish(z.array(item)),
    z.transform((value): z.output<T>[] => value ?? []),
  );
}

export const filterSchema = z.looseObject({
  fact: list(factFilterSchema),
  cf_class: list(z.string()),
  agent: list(z.string()),
  identity: list(z.string()),
  compound: list(z.array(z.record(z.string(), z.unknown()))),
});

export type FactFilter = z.infer<typeof factFilterSchema>;
export type Filter = z.infer<typeof filterSchema>;

export function emptyFilter(): Filter {
  return { fact: [], cf_class: [], agent: [], identity: [], compound: [] };
}

/** A filter with all five arrays, in Go's key order, from any subset of them. */
export function normaliseFilter(partial: Partial<Filter> = {}): Filter {
  return {
    fact: (partial.fact ?? []).map((f) => ({ fact: f.fact, operator: f.operator, value: f.value })),
    cf_class: [...(partial.cf_class ?? [])],
    agent: [...(partial.agent ?? [])],
    identity: [...(partial.identity ?? [])],
    compound: (partial.compound ?? []).map((group) => group.map((term) => sortKeys(term))),
  };
}

/** True when the filter selects every node. */
export function isEmptyFilter(filter: Filter): boolean {
  return (
    filter.fact.length === 0 &&
    filter.cf_class.length === 0 &&
    filter.agent.length === 0 &&
    filter.identity.length === 0 &&
    filter.compound.length === 0
  );
}

// Compound terms are Go maps, which encoding/json writes with sorted keys.
function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value === null || typeof value !== "object") return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort())
    sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  return sorted as T;
}

/** What a member node knows about itself, for filter matching. */
export interface NodeInventory {
  identity: string;
  facts: Record<string, unknown>;
  classes: readonly string[];
  agents: readonly string[];
}
/*
 * Matching follows go-choria's member node (filter/identity, filter/classes, filter/agents, filter/facts,
 * filter/compound and protocol's MatchServerRequest); test/unit/protocol/filter.test.ts has a table row
 * for each rule:
 * - identity: OR over the list. An entry that starts and ends with `/` (a lone `/` included) is an
 *   unanchored, case-sensitive regular expression; when it does not match (or does not compile) the
 *   identity is still compared with the text between the slashes. Other entries are exact names.
 * - cf_class: AND over the list. `/re/` is matched case-insensitively against each class; an exact entry
 *   is lower-cased and compared with each class as the class is written (so `Nginx` finds `nginx`, but
 *   `nginx` does not find `Nginx`).
 * - agent: AND over the list; `/re/` case-sensitive, anything else exact.
 * - fact: AND over the list. The fact is found with a gjson path (see lookupFact) and compared by the
 *   JSON type of what is found (see compareFact): strings case-insensitively, numbers as integers or as
 *   floats depending on whether the value has a dot, booleans by Go's ParseBool; null, objects, arrays
 *   and missing facts match no operator, not even `!=`. `=~` trims every leading and trailing `/` and
 *   matches case-insensitively.
 * - compound: each group is Go's single `{"expr": "<query>"}` map in the subset of Choria's expression
 *   language described at compileExpression; groups are tallied as Go does (+1 true, -1 false; any
 *   group that fails to compile or run fails the filter) and the filter matches when the tally is
 *   positive. A group of any other shape fails the filter.
 * Regular expressions are RE2 (Go's syntax, linear time; lib/protocol/re2.ts). A bad regex or expression
 * never throws: it does not match, and validateFilter reports it.
 */
export function matchFilter(filter: Filter, node: NodeInventory): boolean {
  if (filter.identity.length > 0 && !filter.identity.some((needle) => identityMatches(needle, node.identity)))
    return false;
  if (!filter.agent.every((needle) => agentMatches(needle, node.agents))) return false;
  if (!filter.cf_class.every((needle) => classMatches(needle, node.classes))) return false;
  if (!filter.fact.every((f) => factMatches(f, node.facts))) return false;
  return filter.compound.length === 0 || compoundMatches(filter.compound, node);
}

/**
 * Refuses a filter a node could not evaluate: regular expressions that are not RE2 (or too large) and
 * unsupported compound queries. Each pattern is checked as the Go server compiles it.
 */
export function validateFilter(filter: Filter): Decoded<Filter> {
  const listProblem =
    regexListProblem("identity", filter.identity) ??
    regexListProblem("cf_class", filter.cf_class) ??
    regexListProblem("agent", filter.agent);
  if (listProblem) return listProblem;
  for (const [i, f] of filter.fact.entries()) {
    if (f.operator !== "=~") continue;
    const compiled = compileRe2(factPattern(f.value));
    if (!compiled.ok)
      return fail("filter", "invalid_field", `fact.${i}.value`, badRegex(f.value, compiled.reason));
  }
  for (const [i, group] of filter.compound.entries()) {
    const query = compoundQuery(group);
    if (query === undefined)
      return fail("filter", "invalid_field", `compound.${i}`, 'expected [{"expr": "<query>"}]');
    const compiled = compileExpression(query);
    if (!compiled.ok) return fail("filter", "invalid_field", `compound.${i}.0.expr`, compiled.reason);
    const withProblem = withRegexProblem(compiled.program);
    if (withProblem) return fail("filter", "invalid_field", `compound.${i}.0.expr`, withProblem);
  }
  return ok(filter);
}

// A `with('/re/')` or `with('fact=~re')` whose pattern is not RE2 would never match on a node (Go gives no
// error there); refusing it up front tells the caller why.
function withRegexProblem(expression: Expression): string | undefined {
  switch (expression.type) {
    case "not":
      return withRegexProblem(expression.operand);
    case "logic":
    case "compare":
      return withRegexProblem(expression.left) ?? withRegexProblem(expression.right);
    case "call": {
      const [query] = expression.args;
      if (expression.name === "with" && query?.type === "literal" && typeof query.value === "string") {
        const fact = parseFactFilterString(query.value);
        const pattern =
          fact === undefined
            ? isSlashed(query.value)
              ? innerPattern(query.value)
              : undefined
            : fact.operator === "=~"
              ? factPattern(fact.value)
              : undefined;
        const compiled = pattern === undefined ? undefined : compileRe2(pattern);
        if (compiled && !compiled.ok) return badRegex(query.value, compiled.reason);
      }
      for (const arg of expression.args) {
        const problem = withRegexProblem(arg);
        if (problem) return problem;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Schema check plus validateFilter, for filters arriving from outside (for example an HTTP body). */
export function decodeFilter(value: unknown): Decoded<Filter> {
  const decoded = validateWith("filter", filterSchema, value);
  return decoded.ok ? validateFilter(decoded.value) : decoded;
}

function regexListProblem(field: string, list: readonly string[]): Decoded<Filter> | undefined {
  for (const [i, needle] of list.entries()) {
    if (!isSlashed(needle)) continue;
    const compiled = compileRe2(innerPattern(needle));
    if (!compiled.ok)
      return fail("filter", "invalid_field", `${field}.${i}`, badRegex(needle, compiled.reason));
  }
  return undefined;
}

function badRegex(text: string, reason: string): string {
  return `not a valid RE2 regular expression ${text}: ${reason}`;
}

// --- names and regular expressions -------------------------------------------------------------------

// Go's test is a prefix and a suffix check, so a lone "/" counts and stands for the empty pattern.
function isSlashed(needle: string): boolean {
  return needle.startsWith("/") && needle.endsWith("/");
}

// One slash off each end (a lone "/" gives the empty pattern).
function innerPattern(needle: string): string {
  return needle.length < 2 ? "" : needle.slice(1, -1);
}

function identityMatches(needle: string, identity: string): boolean {
  if (!isSlashed(needle)) return needle === identity;
  const inner = innerPattern(needle);
  return re2OrUndefined(inner)?.test(identity) === true || inner === identity;
}

function classMatches(needle: string, classes: readonly string[]): boolean {
  if (isSlashed(needle)) {
    const regex = re2OrUndefined(`(?i)${innerPattern(needle)}`);
    return regex !== undefined && classes.some((name) => regex.test(name));
  }
  const lower = goToLower(needle);
  return classes.includes(lower);
}

function agentMatches(needle: string, agents: readonly string[]): boolean {
  if (!isSlashed(needle)) return agents.includes(needle);
  const regex = re2OrUndefined(innerPattern(needle));
  return regex !== undefined && agents.some((name) => regex.test(name));
}

// A `=~` value loses every leading and trailing slash, so `/re/`, `re` and `//re//` are one pattern, and
// always matches case-insensitively.
function factPattern(value: string): string {
  return `(?i)${value.replace(/^\/+|\/+$/g, "")}`;
}

// --- Go's string helpers ---------------------------------------------------------------------------------

// Go maps case one code point at a time; JavaScript's toLowerCase can look at context (final sigma) or
// give two code points (U+0130), so each code point is mapped alone and only its first code point kept.
function caseMapped(text: string, map: (char: string) => string): string {
  let out = "";
  for (const char of text) out += String.fromCodePoint(map(char).codePointAt(0) ?? 0);
  return out;
}

function goToLower(text: string): string {
  return caseMapped(text, (char) => char.toLowerCase());
}

// strings.EqualFold: equal under simple case folding, code point by code point.
function goEqualFold(a: string, b: string): boolean {
  const left = [...a];
  const right = [...b];
  if (left.length !== right.length) return false;
  return left.every((char, i) => {
    const other = right[i]!;
    return (
      char === other ||
      goToLower(char) === goToLower(other) ||
      caseMapped(char, (c) => c.toUpperCase()) === caseMapped(other, (c) => c.toUpperCase())
    );
  });
}

// Go compares strings byte by byte in UTF-8, which is code point order (UTF-16 units differ above U+FFFF).
function compareCodePoints(a: string, b: string): number {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const l = left.next();
    const r = right.next();
    if (l.done || r.done) return l.done && r.done ? 0 : l.done ? -1 : 1;
    const diff = l.value.codePointAt(0)! - r.value.codePointAt(0)!;
    if (diff !== 0) return diff;
  }
}

// --- facts -----------------------------------------------------------------------------------------------

const MAX_SAFE = 9007199254740991;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The value at a gjson path in the facts (what go-choria's servers use for fact filters, `fact()` in
 * compound filters and rpcutil#get_fact), or undefined when absent. Supported: `a.b.c`, `\.` to escape a
 * dot in a key (a key with a dot is never found by the plain path), `*` and `?` wildcards in object keys
 * (the first matching key in sorted order, as in the JSON a Go server marshals), array indexes
 * (`disks.0.size`), `#` for an array's length and `list.#.key` for a key of every element. gjson's
 * queries (`#(...)`), pipes, modifiers and multipaths are not supported: such a path finds nothing.
 */
export function lookupFact(facts: Record<string, unknown>, path: string): unknown {
  if (/[|]|#[([]|^[@!{[]|^\.\.|\.[{[]/.test(path)) return undefined;
  return gjsonGet(facts, path);
}

function gjsonGet(value: unknown, path: string): unknown {
  if (Array.isArray(value)) {
    const dot = path.indexOf(".");
    const part = dot < 0 ? path : path.slice(0, dot);
    const rest = dot < 0 ? undefined : path.slice(dot + 1);
    if (part === "#") {
      if (rest === undefined) return value.length;
      return value.map((item) => gjsonGet(item, rest)).filter((item) => item !== undefined);
    }
    if (!/^\d+$/.test(part)) return undefined;
    const index = Number(part);
    if (index >= value.length) return undefined;
    return rest === undefined ? value[index] : descend(value[index], rest);
  }
  if (!isRecord(value)) return undefined;
  const { key, wild, rest } = objectPathPart(path);
  const candidates = wild
    ? Object.keys(value)
        .sort(compareCodePoints)
        .filter((name) => wildcardMatch(name, key))
    : Object.hasOwn(value, key)
      ? [key]
      : [];
  for (const name of candidates) {
    if (rest === undefined) return value[name];
    const found = descend(value[name], rest);
    if (found !== undefined) return found;
  }
  return undefined;
}

// gjson only goes on into objects and arrays; a path that continues past a scalar finds nothing.
function descend(value: unknown, rest: string): unknown {
  return value !== null && typeof value === "object" ? gjsonGet(value, rest) : undefined;
}

// One object key from the front of a path: `\` makes the next character literal; an unescaped `*` or
// `?` makes the key a wildcard pattern.
function objectPathPart(path: string): { key: string; wild: boolean; rest: string | undefined } {
  let key = "";
  let wild = false;
  for (let i = 0; i < path.length; i++) {
    const char = path[i]!;
    if (char === "\\") {
      i++;
      if (i < path.length) key += path[i];
      continue;
    }
    if (char === ".") return { key, wild, rest: path.slice(i + 1) };
    if (char === "*" || char === "?") wild = true;
    key += char;
  }
  return { key, wild, rest: undefined };
}

// `*` any run of characters, `?` one character (code point); everything else literal.
function wildcardMatch(text: string, pattern: string): boolean {
  const chars = [...text];
  const glob = [...pattern];
  let t = 0;
  let g = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (t < chars.length) {
    if (g < glob.length && (glob[g] === "?" || glob[g] === chars[t])) {
      t++;
      g++;
    } else if (g < glob.length && glob[g] === "*") {
      starAt = g++;
      resumeAt = t;
    } else if (starAt >= 0) {
      g = starAt + 1;
      t = ++resumeAt;
    } else return false;
  }
  while (g < glob.length && glob[g] === "*") g++;
  return g === glob.length;
}

/** What gjson reports about a found fact: its JSON type and value. */
type FactValue =
  | { type: "string"; value: string }
  | { type: "number"; value: number }
  | { type: "true" | "false" | "null" | "json" };

function factValue(value: unknown): FactValue | undefined {
  if (typeof value === "string") return { type: "string", value };
  if (typeof value === "number") return Number.isFinite(value) ? { type: "number", value } : { type: "null" };
  if (typeof value === "boolean") return { type: value ? "true" : "false" };
  if (value === null) return { type: "null" };
  if (typeof value === "object") return { type: "json" };
  return undefined; // not something JSON carries: absent
}

function factMatches(filter: FactFilter, facts: Record<string, unknown>): boolean {
  const found = factValue(lookupFact(facts, filter.fact));
  return found !== undefined && compareFact(found, filter.operator, filter.value);
}

/**
 * One fact filter against a found fact, by the fact's JSON type (go-choria filter/facts matchers.go:
 * eqMatch, neMatch, reMatch, leMatch, geMatch, ltMatch, gtMatch). Where Go returns an error (a value that
 * does not parse as the number it needs, an ordering on a boolean) the filter does not match.
 */
function compareFact(fact: FactValue, operator: FactOperator, value: string): boolean {
  switch (fact.type) {
    case "string":
      return compareString(fact.value, operator, value);
    case "number":
      return compareNumber(fact.value, operator, value);
    case "true":
    case "false": {
      // `==` reads the value as written; `!=` and `=~` lower-case it first. A false fact is "equal" to any
      // value that is not true, and Go's `!=` on a false fact is the same test as its `==`.
      const isTrue = fact.type === "true";
      if (operator === "==") return isTrue ? goParseBoolTrue(value) : !goParseBoolTrue(value);
      const lowered = goParseBoolTrue(value.toLowerCase());
      if (operator === "!=") return !lowered;
      if (operator === "=~") return isTrue ? lowered : !lowered;
      return false;
    }
    case "null":
    case "json":
      return false;
  }
}

function compareString(fact: string, operator: FactOperator, value: string): boolean {
  switch (operator) {
    case "==":
      return goEqualFold(fact, value);
    case "!=":
      return !goEqualFold(fact, value);
    case "=~":
      return re2OrUndefined(factPattern(value))?.test(fact) === true;
    default:
      return ordered(compareCodePoints(goToLower(fact), goToLower(value)), operator);
  }
}

function ordered(diff: number, operator: "<" | "<=" | ">" | ">="): boolean {
  return operator === "<"
    ? diff < 0
    : operator === "<="
      ? diff <= 0
      : operator === ">"
        ? diff > 0
        : diff >= 0;
}

function compareNumber(fact: number, operator: FactOperator, value: string): boolean {
  // The value decides how the fact is read: with a dot anywhere, both are floats; without, the fact is
  // truncated to an integer (5.9 is 5) and compared with the value as an integer, or as text for == and !=.
  const asFloat = value.includes(".");
  if (operator === "=~")
    return (
      re2OrUndefined(factPattern(value))?.test(asFloat ? goFixed4(fact) : String(gjsonInt(fact))) === true
    );
  if (asFloat) {
    const number = goParseFloat(value);
    if (number === undefined) return false;
    switch (operator) {
      case "==":
        return fact === number;
      case "!=":
        return fact !== number;
      case ">": // go-choria's gtMatch uses >= for floats, so 5.5 > 5.5 holds
      case ">=":
        return fact >= number;
      default:
        return ordered(fact - number, operator);
    }
  }
  const integer = gjsonInt(fact);
  if (operator === "==") return String(integer) === value;
  if (operator === "!=") return String(integer) !== value;
  const number = goAtoi(value);
  if (number === undefined) return false;
  return ordered(integer < number ? -1 : integer > number ? 1 : 0, operator);
}

// strconv.ParseBool's true spellings; anything else, including its false spellings, is not true.
function goParseBoolTrue(value: string): boolean {
  return (
    value === "1" ||
    value === "t" ||
    value === "T" ||
    value === "true" ||
    value === "TRUE" ||
    value === "True"
  );
}

// gjson's Result.Int for a number: truncation within JavaScript's safe range; beyond it the number's JSON
// text read as a (wrapping) int64, or Go's out-of-range float conversion on amd64.
function gjsonInt(fact: number): bigint {
  if (Math.abs(fact) <= MAX_SAFE) return BigInt(Math.trunc(fact));
  const text = JSON.stringify(fact);
  if (/^-?\d+$/.test(text)) return BigInt.asIntN(64, BigInt(text));
  return INT64_MIN;
}

// strconv.Atoi: optional sign, decimal digits, int64 range.
function goAtoi(value: string): bigint | undefined {
  if (!/^[+-]?\d+$/.test(value)) return undefined;
  const number = BigInt(value);
  return number < INT64_MIN || number > INT64_MAX ? undefined : number;
}

// strconv.ParseFloat for the values that reach it (they contain a dot): Go's decimal and hexadecimal
// float literals, `_` only between digits, no spaces; out of range is an error.
const DIGITS = String.raw`\d+(?:_\d+)*`;
const HEX_DIGITS = "[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*";
const GO_DECIMAL = new RegExp(
  String.raw`^[+-]?(?:${DIGITS}(?:\.(?:${DIGITS})?)?|\.${DIGITS})(?:[eE][+-]?${DIGITS})?$`,
);
const GO_HEX = new RegExp(
  String.raw`^([+-]?)0[xX](?:_?(${HEX_DIGITS}))?(?:\.(${HEX_DIGITS})?)?[pP]([+-]?${DIGITS})$`,
);

function goParseFloat(value: string): number | undefined {
  let number: number;
  if (GO_DECIMAL.test(value)) number = Number(value.replaceAll("_", ""));
  else {
    const hex = GO_HEX.exec(value);
    if (!hex) return undefined;
    const [, sign, whole = "", fraction = ""] = hex;
    const digits = (whole + fraction).replaceAll("_", "");
    if (digits === "") return undefined;
    const exponent = Number(hex[4]!.replaceAll("_", "")) - 4 * fraction.replaceAll("_", "").length;
    number = Number(BigInt(`0x${digits}`)) * 2 ** exponent;
    if (sign === "-") number = -number;
  }
  return Number.isFinite(number) ? number : undefined;
}

// fmt.Sprintf("%.4f"): the exact binary value rounded to 4 places, ties to even (toFixed rounds ties up).
function goFixed4(fact: number): string {
  const sign = fact < 0 || Object.is(fact, -0) ? "-" : "";
  const magnitude = Math.abs(fact);
  if (magnitude >= 1e21) return `${sign}${BigInt(magnitude)}.0000`;
  const [whole = "0", fraction = ""] = magnitude.toFixed(100).split(".");
  let scaled = BigInt(whole + fraction.slice(0, 4));
  const rest = fraction.slice(4).replace(/0+$/, "");
  if (rest > "5" || (rest === "5" && scaled % 2n === 1n)) scaled += 1n;
  const digits = scaled.toString().padStart(5, "0");
  return `${sign}${digits.slice(0, -4)}.${digits.slice(-4)}`;
}

/**
 * Parses the command-line fact filter form used by `with('...')` and `-F` as go-choria does
 * (filter/facts ParseFactFilterString): the operator is the last of `<=`, `>=`, `=>`, `=<`, `<`, `>`,
 * `!=`, `=~`, `=`, `==` found scanning left to right, so `a=b=c` is the fact `a=b`; neither side may be
 * empty, the fact may not start and the value may not end with `<`, `>` or `=`; `=`, `=>` and `=<` mean
 * `==`, `>=` and `<=`; and a value written `/.../` makes the operator `=~` whatever was typed.
 */
export function parseFactFilterString(text: string): FactFilter | undefined {
  const operators = [...text.matchAll(/<=|>=|=>|=<|<|>|!=|=~|={1,2}/g)];
  const last = operators.at(-1);
  if (last === undefined) return undefined;
  const fact = text.slice(0, last.index).trim();
  const value = text.slice(last.index + last[0].length).trim();
  if (fact === "" || value === "") return undefined;
  if ("<>=".includes(fact[0]!) || "<>=".includes(value.at(-1)!)) return undefined;
  const typed = last[0];
  let operator = (
    typed === "=" ? "==" : typed === "=<" ? "<=" : typed === "=>" ? ">=" : typed
  ) as FactOperator;
  if (value.startsWith("/") && value.endsWith("/")) operator = "=~";
  return { fact, operator, value };
}

// --- compound expressions --------------------------------------------------------------------------------

function compoundQuery(group: readonly Record<string, unknown>[]): string | undefined {
  const expr = group.length === 1 ? group[0]!.expr : undefined;
  return typeof expr === "string" ? expr : undefined;
}

// go-choria's MatchExprString: a group of another shape fails the whole filter at once; a group that does
// not compile or run counts as failed; the others add one when true and take one away when false.
function compoundMatches(
  groups: readonly (readonly Record<string, unknown>[])[],
  node: NodeInventory,
): boolean {
  let tally = 0;
  let failed = 0;
  for (const group of groups) {
    const query = compoundQuery(group);
    if (query === undefined) return false;
    const compiled = compileExpression(query);
    if (!compiled.ok) {
      failed++;
      continue;
    }
    let result: unknown;
    try {
      result = evaluate(compiled.program, node);
    } catch {
      failed++;
      continue;
    }
    if (typeof result !== "boolean") failed++;
    else tally += result ? 1 : -1;
  }
  return failed === 0 && tally > 0;
}

type Expression =
  | { type: "literal"; value: string | number | boolean | null }
  | { type: "list"; name: "classes" | "agents" }
  | { type: "call"; name: "with" | "fact" | "include"; args: Expression[] }
  | { type: "not"; operand: Expression }
  | { type: "logic"; op: "and" | "or"; left: Expression; right: Expression }
  | { type: "compare"; op: ComparisonOperator; left: Expression; right: Expression };

type ComparisonOperator = "==" | "!=" | "<" | "<=" | ">" | ">=" | "matches" | "in";

export type CompiledExpression = { ok: true; program: Expression } | { ok: false; reason: string };

const ARITY = { with: 1, fact: 1, include: 2 } as const;
const COMPARISONS = new Set<string>(["==", "!=", "<", "<=", ">", ">=", "matches", "in"]);
const TOKEN =
  /\s*(?:(?<number>-?\d+(?:\.\d+)?)|(?<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?<word>[A-Za-z_]\w*)|(?<op>==|!=|<=|>=|&&|\|\||[<>!(),]))/y;

type Token = { kind: "number" | "string" | "word" | "op"; text: string };

const EXPRESSION_CACHE_LIMIT = 512;
const expressionCache = new Map<string, CompiledExpression>();

/**
 * Compiles the supported subset of Choria's compound filter language (expr-lang in go-choria):
 *   or:      and (("or" | "||") and)*
 *   and:     unary (("and" | "&&") unary)*
 *   unary:   ("not" | "!") unary | compare
 *   compare: value (("==" | "!=" | "<" | "<=" | ">" | ">=" | "matches" | "in") value)?
 *   value:   'string' | "string" | number | true | false | nil | classes | agents | "(" or ")"
 *            | with('<class, agent or fact filter>') | fact('<dotted path>') | include(<list>, <value>)
 * `with` takes a class or agent name (or `/re/`) or a fact filter such as `country=mt` or `memory>=4`.
 * Everything else in Choria's language (semver, data plugins, member access, arithmetic) is refused.
 */
export function compileExpression(text: string): CompiledExpression {
  const cached = expressionCache.get(text);
  if (cached) return cached;
  let compiled: CompiledExpression;
  try {
    const parser = new ExpressionParser(tokenize(text));
    compiled = { ok: true, program: parser.parse() };
  } catch (err) {
    compiled = { ok: false, reason: (err as Error).message };
  }
  if (expressionCache.size >= EXPRESSION_CACHE_LIMIT) expressionCache.clear();
  expressionCache.set(text, compiled);
  return compiled;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (text.slice(TOKEN.lastIndex).trim() !== "") {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (!match?.groups) throw new Error(`unexpected input at ${at}: ${text.slice(at, at + 10)}`);
    const [kind, value] = Object.entries(match.groups).find(([, v]) => v !== undefined) as [
      Token["kind"],
      string,
    ];
    tokens.push({ kind, text: value });
  }
  return tokens;
}

class ExpressionParser {
  private position = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Expression {
    if (this.tokens.length === 0) throw new Error("empty expression");
    const expression = this.or();
    const extra = this.tokens[this.position];
    if (extra) throw new Error(`unexpected ${extra.text}`);
    return expression;
  }

  private peek(): Token | undefined {
    return this.tokens[this.position];
  }

  private accept(...texts: string[]): string | undefined {
    const token = this.peek();
    if (token && (token.kind === "op" || token.kind === "word") && texts.includes(token.text)) {
      this.position++;
      return token.text;
    }
    return undefined;
  }

  private expect(text: string): void {
    if (!this.accept(text)) throw new Error(`expected ${text} but found ${this.peek()?.text ?? "the end"}`);
  }

  private or(): Expression {
    let left = this.and();
    while (this.accept("or", "||")) left = { type: "logic", op: "or", left, right: this.and() };
    return left;
  }

  private and(): Expression {
    let left = this.unary();
    while (this.accept("and", "&&")) left = { type: "logic", op: "and", left, right: this.unary() };
    return left;
  }

  private unary(): Expression {
    if (this.accept("not", "!")) return { type: "not", operand: this.unary() };
    const left = this.value();
    const token = this.peek();
    if (token && COMPARISONS.has(token.text)) {
      this.position++;
      const right = this.value();
      // expr-lang compiles a literal `matches` pattern with the query, so a bad one is a compile error.
      if (token.text === "matches" && right.type === "literal" && typeof right.value === "string") {
        const compiled = compileRe2(right.value);
        if (!compiled.ok) throw new Error(`bad regular expression ${right.value}: ${compiled.reason}`);
      }
      return { type: "compare", op: token.text as ComparisonOperator, left, right };
    }
    return left;
  }

  private value(): Expression {
    const token = this.peek();
    if (!token) throw new Error("unexpected end of expression");
    this.position++;
    switch (token.kind) {
      case "number":
        return { type: "literal", value: Number(token.text) };
      case "string":
        return { type: "literal", value: unquote(token.text) };
      case "op":
        if (token.text !== "(") throw new Error(`unexpected ${token.text}`);
        return this.parenthesised();
      case "word":
        return this.word(token.text);
    }
  }

  private parenthesised(): Expression {
    const inner = this.or();
    this.expect(")");
    return inner;
  }

  private word(word: string): Expression {
    if (word === "true" || word === "false") return { type: "literal", value: word === "true" };
    if (word === "nil") return { type: "literal", value: null };
    if (word === "classes" || word === "agents") return { type: "list", name: word };
    if (!Object.hasOwn(ARITY, word)) throw new Error(`unsupported name ${word}`);
    const name = word as keyof typeof ARITY;
    this.expect("(");
    const args: Expression[] = [];
    if (!this.accept(")")) {
      do args.push(this.or());
      while (this.accept(","));
      this.expect(")");
    }
    if (args.length !== ARITY[name]) throw new Error(`${name}() takes ${ARITY[name]} argument(s)`);
    return { type: "call", name, args };
  }
}

function unquote(literal: string): string {
  return literal.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: "\n", t: "\t" })[c] ?? c);
}

// Evaluation throws on a type error (Choria's language is typed); compoundMatches turns that into false.
function evaluate(expression: Expression, node: NodeInventory): unknown {
  switch (expression.type) {
    case "literal":
      return expression.value;
    case "list":
      return expression.name === "classes" ? node.classes : node.agents;
    case "not":
      return !asBoolean(evaluate(expression.operand, node));
    case "logic": {
      const left = asBoolean(evaluate(expression.left, node));
      if (expression.op === "and" ? !left : left) return left;
      return asBoolean(evaluate(expression.right, node));
    }
    case "call":
      return call(expression, node);
    case "compare":
      return compare(expression.op, evaluate(expression.left, node), evaluate(expression.right, node));
  }
}

function asBoolean(value: unknown): boolean {
  if (typeof value !== "boolean") throw new Error("expected a boolean");
  return value;
}

function call(expression: Extract<Expression, { type: "call" }>, node: NodeInventory): unknown {
  const args = expression.args.map((arg) => evaluate(arg, node));
  switch (expression.name) {
    case "with": {
      const query = args[0];
      if (typeof query !== "string") throw new Error("with() takes a string");
      const fact = parseFactFilterString(query);
      if (fact) return factMatches(fact, node.facts);
      return classMatches(query, node.classes) || agentMatches(query, node.agents);
    }
    case "fact": {
      if (typeof args[0] !== "string") throw new Error("fact() takes a string");
      return lookupFact(node.facts, args[0]) ?? null;
    }
    case "include": {
      const [list, needle] = args;
      if (!Array.isArray(list)) throw new Error("include() takes a list");
      return list.some((item) => item === needle);
    }
  }
}

function compare(op: ComparisonOperator, left: unknown, right: unknown): boolean {
  switch (op) {
    case "==":
      return left === right;
    case "!=":
      return left !== right;
    case "in":
      if (!Array.isArray(right)) throw new Error("in needs a list on the right");
      return right.includes(left);
    case "matches": {
      if (typeof left !== "string" || typeof right !== "string") throw new Error("matches needs strings");
      const compiled = compileRe2(right);
      if (!compiled.ok) throw new Error(`bad regular expression ${right}: ${compiled.reason}`);
      return compiled.regex.test(left);
    }
    default: {
      const bothNumbers = typeof left === "number" && typeof right === "number";
      const bothStrings = typeof left === "string" && typeof right === "string";
      if (!bothNumbers && !bothStrings) throw new Error(`${op} needs two numbers or two strings`);
      const [l, r] = [left, right] as [number | string, number | string];
      return op === "<" ? l < r : op === "<=" ? l <= r : op === ">" ? l > r : l >= r;
    }
  }
}
