// The one option parser of every choria-edge command and process: `--flag value`, `--flag=value`, bare
// booleans, comma lists, repeated flags, positionals; `<PREFIX>FLAG_NAME` variables; flags win. Pure, so
// each command's parsing is testable without a process.

export type OptionKind = "string" | "int" | "list" | "multiple" | "bool";

/** What the parser needs to know of an option. */
export interface OptionFlag {
  readonly flag: string;
  /** `list` splits on commas and adds up repeats; `multiple` adds up repeats as they are. */
  readonly kind: OptionKind;
  /** The value when neither the flag nor its environment variable is given. */
  readonly default?: string | boolean;
}

/** An option as a process's `--help` lists it. */
export interface OptionSpec extends OptionFlag {
  readonly help: string;
}

export type OptionValue = string | string[] | boolean;

type KindValue<K extends OptionKind> = K extends "bool"
  ? boolean
  : K extends "list" | "multiple"
    ? string[]
    : string;

/** The values by flag, typed from a constant option list: an option with a default is always there. */
export type OptionValues<O extends readonly OptionFlag[]> = {
  [F in O[number] as F["flag"]]:
    | KindValue<F["kind"]>
    | (F extends { default: string | boolean } ? never : undefined);
};

export type ReadOptions<O extends readonly OptionFlag[] = readonly OptionFlag[]> =
  | {
      ok: true;
      values: OptionValues<O>;
      /** The arguments that are not options, in order (only when positionals are allowed). */
      positionals: string[];
      get: (flag: string) => OptionValue | undefined;
      str: (flag: string) => string | undefined;
    }
  | { ok: false; error: string }
  | { ok: false; help: true };

/** `CHORIA_EDGE_BROKER_` + `max-hops` → `CHORIA_EDGE_BROKER_MAX_HOPS`. */
export function envName(prefix: string, flag: string): string {
  return prefix + flag.toUpperCase().replaceAll("-", "_");
}

/**
 * Options from `argv`, else from `env` under `prefix` (an empty `env` for commands that read no
 * variables this way), else their defaults. With `positionals`, other arguments are kept (`-` is one,
 * `--` ends the options); without, they are an error.
 */
export function readOptions<const O extends readonly OptionFlag[]>(
  options: O,
  prefix: string,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  how: { positionals?: boolean } = {},
): ReadOptions<O> {
  const byFlag = new Map<string, OptionFlag>(options.map((o) => [o.flag, o]));
  const fromFlags = new Map<string, OptionValue>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: false, help: true };
    if (how.positionals && arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (how.positionals && (arg === "-" || !arg.startsWith("-"))) {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) {
      return how.positionals
        ? { ok: false, error: `unknown option '${arg}' (put '--' before an argument that starts with '-')` }
        : { ok: false, error: `unexpected argument '${arg}'` };
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const option = byFlag.get(name);
    if (option === undefined) return { ok: false, error: `unknown option '--${name}'` };
    if (option.kind === "bool") {
      fromFlags.set(name, eq === -1 ? true : isTrue(arg.slice(eq + 1)));
      continue;
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) return { ok: false, error: `option '--${name}' needs a value` };
    const previous = fromFlags.get(name);
    const earlier = Array.isArray(previous) ? previous : [];
    if (option.kind === "list") fromFlags.set(name, [...earlier, ...splitList(value)]);
    else if (option.kind === "multiple") fromFlags.set(name, [...earlier, value]);
    else fromFlags.set(name, value);
  }
  const fromEnv = (flag: string): OptionValue | undefined => {
    const option = byFlag.get(flag);
    const value = env[envName(prefix, flag)];
    if (option === undefined || value === undefined || value === "") return undefined;
    if (option.kind === "list") return splitList(value);
    if (option.kind === "multiple") return [value];
    return option.kind === "bool" ? isTrue(value) : value;
  };
  const get = (flag: string) => fromFlags.get(flag) ?? fromEnv(flag) ?? byFlag.get(flag)?.default;
  const values = Object.fromEntries(options.map((o) => [o.flag, get(o.flag)])) as OptionValues<O>;
  return {
    ok: true,
    values,
    positionals,
    get,
    str: (flag) => {
      const value = get(flag);
      return typeof value === "string" ? value : undefined;
    },
  };
}

/** The option list of a command's `--help`, each with its environment variable. */
export function optionsUsage(options: readonly OptionSpec[], prefix: string): string {
  const left = (o: OptionSpec) =>
    o.kind === "bool" ? `--${o.flag}` : `--${o.flag} <${o.kind === "list" ? "a,b" : "value"}>`;
  const width = Math.max(...options.map((o) => left(o).length)) + 4;
  return options
    .map((o) => `  ${left(o).padEnd(width)} ${o.help}\n  ${"".padEnd(width)} env ${envName(prefix, o.flag)}`)
    .join("\n");
}

function splitList(value: string): string[] {
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

function isTrue(value: string): boolean {
  return ["1", "true", "yes", "on"].includes(value.trim().toLowerCase());
}

/** A `--metrics-listen` style value: `host:port`, `:port` (127.0.0.1), or `off` (undefined). */
export function listenAddress(text: string): { host: string; port: number } | undefined {
  if (text === "off") return undefined;
  const colon = text.lastIndexOf(":");
  return { host: text.slice(0, colon) || "127.0.0.1", port: Number(text.slice(colon + 1)) };
}

/** What a `host:port` or `off` option must look like (check with `listenAddress` after). */
export const LISTEN_PATTERN = /^(?:off|[^:\s]*:\d{1,5})$/;
