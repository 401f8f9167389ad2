// How go-choria v0.30.2's servers match request filters, one row per rule, for lib/protocol/filter.ts to
// reproduce. Each row was worked out by reading the Go function named in the comment above its group
// (package paths under github.com/choria-io/go-choria). The tables are plain data so that they can also be
// replayed against the Go packages themselves.
import type { FactOperator } from "../../../lib/protocol/filter.ts";

/** The facts document every fact row runs against, as a server's facts file would hold it. */
export const GO_FACTS = {
  country: "mt",
  name: "Web1",
  release: "11",
  memory_gb: 16,
  load: 0.75,
  ratio: 5.5,
  neg: -3.7,
  tiny: 0.03125,
  virtual: true,
  physical: false,
  nothing: null,
  os: { family: "Debian", release: { major: "12" } },
  disks: [{ size: 100 }, { size: 200 }],
  tags: ["a", "b"],
  "dotted.key": "flat",
  wild: { beta: "second", alpha: "first" },
};

export const GO_CLASSES = ["base", "roles::web", "nginx", "Apache"];
export const GO_AGENTS = ["rpcutil", "discovery", "demo"];
export const GO_IDENTITY = "web1.example.net";

export type FactCase = readonly [fact: string, operator: FactOperator, value: string, matches: boolean];

export const FACT_CASES: readonly FactCase[] = [
  // filter/facts matchers.go eqMatch, neMatch (string): case-insensitive equality (strings.EqualFold)
  ["country", "==", "mt", true],
  ["country", "==", "MT", true],
  ["country", "==", "m", false],
  ["country", "!=", "MT", false],
  ["country", "!=", "de", true],
  // ... and a string fact is text even when it looks like a number
  ["release", "==", "11.0", false],

  // filter/facts matchers.go leMatch, geMatch, ltMatch, gtMatch (string): both sides lower-cased, then
  // compared as text, so "11" sorts before "9"
  ["release", "<", "9", true],
  ["release", ">", "9", false],
  ["name", ">", "web0", true],
  ["name", "<=", "WEB1", true],
  ["name", "<", "web1", false],
  ["country", ">=", "MT", true],

  // filter/facts matchers.go reMatch, regexMatch (string): every leading/trailing slash trimmed, (?i) added
  ["name", "=~", "^web", true],
  ["name", "=~", "/^WEB1$/", true],
  ["name", "=~", "//^w//", true],
  ["country", "=~", "^d", false],

  // filter/facts matchers.go eqMatch, neMatch (number): a value without a dot is compared as text with
  // the fact's integer part; a value with a dot is parsed as a float (a parse error matches nothing)
  ["memory_gb", "==", "16", true],
  ["memory_gb", "==", "16.0", true],
  ["memory_gb", "==", "016", false],
  ["memory_gb", "==", "+16", false],
  ["memory_gb", "==", "1_6.0", true],
  ["memory_gb", "==", "0x10.0p0", true],
  ["memory_gb", "==", "16.0.0", false],
  ["memory_gb", "!=", "016", true],
  ["memory_gb", "!=", "16.0", false],
  ["memory_gb", "!=", "16.0.0", false],
  ["ratio", "==", "5", true],
  ["ratio", "==", "5.5", true],
  ["neg", "==", "-3", true],

  // filter/facts matchers.go leMatch, geMatch, ltMatch, gtMatch (number): without a dot both are integers
  // (strconv.Atoi on the value; an error matches nothing), with a dot both are floats
  ["memory_gb", ">", "8", true],
  ["memory_gb", ">", "16", false],
  ["memory_gb", ">=", "16", true],
  ["memory_gb", "<", "100", true],
  ["memory_gb", "<=", "15.5", false],
  ["memory_gb", ">", "abc", false],
  ["memory_gb", "<", "1e3", false],
  ["memory_gb", "<", "+17", true],
  ["ratio", ">", "5", false],
  ["ratio", ">=", "6", false],
  ["ratio", "<", "5.6", true],
  ["neg", "<", "-3", false],
  ["neg", "<", "-3.0", true],
  // gtMatch compares floats with >=, so a float fact is "greater than" itself
  ["ratio", ">", "5.5", true],

  // filter/facts matchers.go reMatch (number): with a dot in the pattern the fact is written "%.4f"
  // (ties to even), without one as its integer part
  ["load", "=~", "^0\\.75", true],
  ["load", "=~", "75", false],
  ["memory_gb", "=~", "^16$", true],
  ["memory_gb", "=~", "^16\\.0000$", true],
  ["tiny", "=~", "^0\\.0312$", true],
  ["tiny", "=~", "0\\.0313", false],

  // filter/facts matchers.go eqMatch, truthy, falsey (bool): == reads the value with strconv.ParseBool as
  // written; a false fact equals anything that is not a true spelling
  ["virtual", "==", "true", true],
  ["virtual", "==", "1", true],
  ["virtual", "==", "TRUE", true],
  ["virtual", "==", "tRuE", false],
  ["virtual", "==", "yes", false],
  ["physical", "==", "false", true],
  ["physical", "==", "banana", true],
  ["physical", "==", "true", false],
  // filter/facts matchers.go neMatch (bool): the value is lower-cased first, and a false fact uses falsey,
  // so `!=` on a false fact gives the same answer as `==`
  ["virtual", "!=", "false", true],
  ["virtual", "!=", "tRuE", false],
  ["virtual", "!=", "true", false],
  ["physical", "!=", "true", false],
  ["physical", "!=", "false", true],
  ["physical", "!=", "banana", true],
  // filter/facts matchers.go reMatch (bool): no regex at all, the lower-cased value is read as a bool
  ["virtual", "=~", "true", true],
  ["virtual", "=~", "/true/", false],
  ["virtual", "=~", "^tr", false],
  ["physical", "=~", "/true/", true],
  ["physical", "=~", "false", true],
  // filter/facts matchers.go leMatch etc. (bool): an error, no match
  ["virtual", ">", "false", false],

  // filter/facts matchers.go (null and JSON types) and facts.go HasFactJSON (absent): nothing matches
  ["nothing", "==", "x", false],
  ["nothing", "!=", "x", false],
  ["nothing", "=~", ".", false],
  ["os", "==", "Debian", false],
  ["os", "!=", "x", false],
  ["disks", "=~", ".", false],
  ["os", ">", "a", false],
  ["missing", "!=", "x", false],

  // filter/facts facts.go GetFactJSON: gjson paths
  ["os.family", "==", "debian", true],
  ["os.release.major", ">=", "12", true],
  ["disks.0.size", "==", "100", true],
  ["disks.1.size", "==", "200", true],
  ["disks.2.size", "!=", "1", false],
  ["disks.#", "==", "2", true],
  ["disks.#.size", "==", "100", false],
  ["tags.1", "==", "b", true],
  ["dotted.key", "==", "flat", false],
  ["dotted\\.key", "==", "flat", true],
  ["o?.family", "==", "Debian", true],
  ["wild.*", "==", "first", true],
  ["wild.b*", "==", "second", true],
  ["country.x", "==", "mt", false],
];

export type ListCase = readonly [needles: string[], matches: boolean];

export const IDENTITY_CASES: readonly ListCase[] = [
  // filter/identity identity.go Match, match: OR; /re/ is unanchored and case-sensitive; a lone "/" is the
  // empty pattern; when the regex fails the text between the slashes is compared as a name
  [["web1.example.net"], true],
  [["web2.example.net"], false],
  [["web2.example.net", "web1.example.net"], true],
  [["web1"], false],
  [["/^web\\d+\\./"], true],
  [["/example/"], true],
  [["/WEB1/"], false],
  [["/(?i)WEB1/"], true],
  [["/"], true],
  [["/[/"], false],
  [["/web1.example.net/"], true],
];

export const CLASS_CASES: readonly ListCase[] = [
  // filter/classes classes.go Match, hasClass, hasClassMatching: AND; an exact needle is lower-cased and
  // compared with the class as written; /re/ gets (?i)
  [["nginx"], true],
  [["NGINX"], true],
  [["nginx", "base"], true],
  [["nginx", "postgresql"], false],
  [["Apache"], false],
  [["apache"], false],
  [["/apache/"], true],
  [["/^ROLES::/"], true],
  [["/^roles::db$/"], false],
  [["roles"], false],
  [["/"], true],
  [["/(/"], false],
];

export const AGENT_CASES: readonly ListCase[] = [
  // filter/agents agents.go Match, hasAgent, hasAgentMatching: AND; exact, or /re/ case-sensitive
  [["rpcutil"], true],
  [["RPCUTIL"], false],
  [["rpcutil", "demo"], true],
  [["rpcutil", "puppet"], false],
  [["/^disc/"], true],
  [["/^RPC/"], false],
  [["/"], true],
];

export type CompoundCase = readonly [exprs: string[], matches: boolean];

export const COMPOUND_CASES: readonly CompoundCase[] = [
  // filter/compound compound.go MatchExprString: +1 per true group, -1 per false one, matches when > 0
  [["true"], true],
  [["true", "false"], false],
  [["true", "false", "true"], true],
  [["false", "true", "true"], true],
  [["false", "false", "true", "true"], false],
  // filter/compound compound.go matchFunc: a fact filter if it parses as one, else classes then agents
  [["with('NGINX')"], true],
  [["with('/^ROLES/')"], true],
  [["with('/^RPC/')"], false],
  [["with('rpcutil')"], true],
  [["with('country=MT')"], true],
  [["with('ratio>5.5')"], true],
  // filter/compound compound.go factFunc: gjson's value; `matches` is Go's regexp, case-sensitive
  [["fact('os.family') matches '^Deb'"], true],
  [["fact('os.family') matches '^deb'"], false],
  [["fact('disks.#') == 2"], true],
  [["fact('dotted\\\\.key') == 'flat'"], true],
];

export type ParseCase = readonly [text: string, parsed: [string, FactOperator, string] | undefined];

export const PARSE_CASES: readonly ParseCase[] = [
  // filter/facts facts.go ParseFactFilterString: the last operator wins, = => =< become == >= <=, a
  // /value/ makes it =~, and neither side may be empty or start/end with an operator character
  ["country=mt", ["country", "==", "mt"]],
  ["country==mt", ["country", "==", "mt"]],
  ["country = /^m/", ["country", "=~", "/^m/"]],
  ["country!=/^m/", ["country", "=~", "/^m/"]],
  ["memory=>4", ["memory", ">=", "4"]],
  ["memory=<4", ["memory", "<=", "4"]],
  ["memory > 4", ["memory", ">", "4"]],
  ["name=~^web", ["name", "=~", "^web"]],
  ["a=b=c", ["a=b", "==", "c"]],
  ["nginx", undefined],
  ["=x", undefined],
  ["a=", undefined],
  ["<a=1", undefined],
  ["a=1<", undefined],
];
