import { z } from "zod";
import { type Decoded, fail, ok } from "./errors.ts";
import { validateWith } from "./json.ts";

export const FACT_OPERATORS = [">=", "<=", "<", ">", "!=", "==", "=~"] as const;
export type FactOperator = (typeof FACT_OPERATORS)[number];

export const factFilterSchema = z.looseObject({
  fact: z.string().min(1),
  operator: z.enum(FACT_OPERATORS),
  value: z.string().min(1),
});

// Go emits every array, but a nil slice marshals as `null` and older senders may leave keys out; all of
// those mean "no constraint", so they decode as empty arrays.
function list<T extends z.ZodType>(item: T) {
  return z
    .array(item)
    .nullish()
    .transform((value): z.output<T>[] => value ?? []);
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
 * Matching follows go-choria's member node:
 * - identity: OR over the list; `/re/` entries are unanchored regular expressions, others exact names;
 * - cf_class and agent: AND over the list, each entry exact or `/re/` against any of the node's names;
 * - fact: AND over the list; the fact is looked up by dotted path (`os.family`, `disks.0.size`), an exact
 *   key containing dots wins over the path; a missing, null, object or array fact never matches. When
 *   both the fact and the value are numeric (numbers or numeric strings) the comparison is numeric,
 *   otherwise string equality and lexicographic order (Go orders a string fact such as "11" as text; we
 *   deliberately compare it as a number); `=~` is an unanchored regex with surrounding slashes optional; boolean facts
 *   compare with Go's strconv.ParseBool truthiness ("true", "1", "t", ...);
 * - compound: AND over the groups (Go tallies trues against falses; both agree for the single group Go
 *   clients send); each group is `[{ "expr": "<query>" }]`, Go's only shape, in the subset of Choria's
 *   expression language described at compileExpression below.
 * Regular expressions are JavaScript's, close to Go's RE2 for the usual patterns; a leading `(?i)` is
 * honoured. A bad regex or expression never throws: it does not match, and validateFilter reports it.
 */
export function matchFilter(filter: Filter, node: NodeInventory): boolean {
  if (filter.identity.length > 0 && !filter.identity.some((needle) => nameMatches(needle, node.identity)))
    return false;
  if (!filter.cf_class.every((needle) => node.classes.some((name) => nameMatches(needle, name))))
    return false;
  if (!filter.agent.every((needle) => node.agents.some((name) => nameMatches(needle, name)))) return false;
  if (!filter.fact.every((f) => factMatches(f, node.facts))) return false;
  return filter.compound.every((group) => compoundMatches(group, node));
}

/** Refuses a filter a node could not evaluate: bad regular expressions or unsupported compound queries. */
export function validateFilter(filter: Filter): Decoded<Filter> {
  const listProblem =
    regexListProblem("identity", filter.identity) ??
    regexListProblem("cf_class", filter.cf_class) ??
    regexListProblem("agent", filter.agent);
  if (listProblem) return listProblem;
  for (const [i, f] of filter.fact.entries()) {
    if (f.operator === "=~" && compileRegex(stripSlashes(f.value)) === undefined)
      return fail("filter", "invalid_field", `fact.${i}.value`, `bad regular expression ${f.value}`);
  }
  for (const [i, group] of filter.compound.entries()) {
    const query = compoundQuery(group);
    if (query === undefined)
      return fail("filter", "invalid_field", `compound.${i}`, 'expected [{"expr": "<query>"}]');
    const compiled = compileExpression(query);
    if (!compiled.ok) return fail("filter", "invalid_field", `compound.${i}.0.expr`, compiled.reason);
  }
  return ok(filter);
}

/** Schema check plus validateFilter, for filters arriving from outside (for example an HTTP body). */
export function decodeFilter(value: unknown): Decoded<Filter> {
  const decoded = validateWith("filter", filterSchema, value);
  return decoded.ok ? validateFilter(decoded.value) : decoded;
}

function regexListProblem(field: string, list: readonly string[]): Decoded<Filter> | undefined {
  for (const [i, needle] of list.entries()) {
    if (isSlashed(needle) && compileRegex(needle.slice(1, -1)) === undefined)
      return fail("filter", "invalid_field", `${field}.${i}`, `bad regular expression ${needle}`);
  }
  return undefined;
}

// --- names and regular expressions -------------------------------------------------------------------

function isSlashed(needle: string): boolean {
  return needle.length >= 2 && needle.startsWith("/") && needle.endsWith("/");
}

function nameMatches(needle: string, name: string): boolean {
  if (!isSlashed(needle)) return needle === name;
  return compileRegex(needle.slice(1, -1))?.test(name) ?? false;
}

// Filters repeat across requests, so compiled patterns are kept; the cache is cleared when it fills, which
// bounds memory without bookkeeping on the hot path. `null` remembers a pattern that does not compile.
const REGEX_CACHE_LIMIT = 512;
const regexCache = new Map<string, RegExp | null>();

function compileRegex(pattern: string): RegExp | undefined {
  let compiled = regexCache.get(pattern);
  if (compiled === undefined) {
    const caseless = pattern.startsWith("(?i)");
    try {
      compiled = new RegExp(caseless ? pattern.slice(4) : pattern, caseless ? "i" : "");
    } catch {
      compiled = null;
    }
    if (regexCache.size >= REGEX_CACHE_LIMIT) regexCache.clear();
    regexCache.set(pattern, compiled);
  }
  return compiled ?? undefined;
}

// Go trims every leading and trailing slash from a `=~` value, so `/re/` and `re` are the same pattern.
function stripSlashes(value: string): string {
  return value.replace(/^\/+|\/+$/g, "");
}

// --- facts -----------------------------------------------------------------------------------------------

const NUMERIC = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const GO_TRUE = new Set(["1", "t", "T", "true", "TRUE", "True"]);

/** The value at a dotted fact path, or undefined when absent. */
export function lookupFact(facts: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(facts, path)) return facts[path];
  let current: unknown = facts;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function asNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && NUMERIC.test(value.trim())) return Number(value);
  return undefined;
}

function factMatches(filter: FactFilter, facts: Record<string, unknown>): boolean {
  return compareFact(lookupFact(facts, filter.fact), filter.operator, filter.value);
}

function compareFact(fact: unknown, operator: FactOperator, value: string): boolean {
  if (typeof fact === "boolean") {
    const equal = fact === GO_TRUE.has(value.trim());
    if (operator === "==") return equal;
    if (operator === "!=") return !equal;
    if (operator === "=~") return compileRegex(stripSlashes(value))?.test(String(fact)) ?? false;
    return false;
  }
  if (typeof fact !== "string" && typeof fact !== "number") return false;
  if (operator === "=~") return compileRegex(stripSlashes(value))?.test(String(fact)) ?? false;
  const factNumber = asNumber(fact);
  const valueNumber = asNumber(value);
  const numeric = factNumber !== undefined && valueNumber !== undefined;
  const left = numeric ? factNumber : String(fact);
  const right = numeric ? valueNumber : value;
  switch (operator) {
    case "==":
      return left === right;
    case "!=":
      return left !== right;
    case "<":
      return left < right;
    case "<=":
      return left <= right;
    case ">":
      return left > right;
    case ">=":
      return left >= right;
  }
}

/**
 * Parses the command-line fact filter form used by `with('...')` and `-F`: `fact=value`, `fact==value`,
 * `fact=/re/`, `fact<op>value` for the other operators, plus the legacy `=>` and `=<`.
 */
export function parseFactFilterString(text: string): FactFilter | undefined {
  const match = /^([^\s=<>!~]+)\s*(=>|=<|<=|>=|==|!=|=~|<|>|=)\s*(.+)$/.exec(text.trim());
  if (!match) return undefined;
  const [, fact, op, value] = match as unknown as [string, string, string, string];
  const operator: FactOperator =
    op === "=>"
      ? ">="
      : op === "=<"
        ? "<="
        : op === "="
          ? isSlashed(value)
            ? "=~"
            : "=="
          : (op as FactOperator);
  return { fact, operator, value };
}

// --- compound expressions --------------------------------------------------------------------------------

function compoundQuery(group: readonly Record<string, unknown>[]): string | undefined {
  const expr = group.length === 1 ? group[0]!.expr : undefined;
  return typeof expr === "string" ? expr : undefined;
}

function compoundMatches(group: readonly Record<string, unknown>[], node: NodeInventory): boolean {
  const query = compoundQuery(group);
  if (query === undefined) return false;
  const compiled = compileExpression(query);
  if (!compiled.ok) return false;
  try {
    return evaluate(compiled.program, node) === true;
  } catch {
    return false;
  }
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
  if (expressionCache.size >= REGEX_CACHE_LIMIT) expressionCache.clear();
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
      return { type: "compare", op: token.text as ComparisonOperator, left, right: this.value() };
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
      return (
        node.classes.some((c) => nameMatches(query, c)) || node.agents.some((a) => nameMatches(query, a))
      );
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
      const regex = compileRegex(right);
      if (!regex) throw new Error(`bad regular expression ${right}`);
      return regex.test(left);
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
