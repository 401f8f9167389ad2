// Command-line options that can also come from the environment, as every long-lived choria-edge process
// takes them: `--flag value`, `--flag=value`, bare booleans, comma lists; `<PREFIX>FLAG_NAME` variables;
// flags win. Pure, so each command's parsing is testable without a process.

export type OptionKind = "string" | "int" | "list" | "bool";

export interface OptionSpec {
  flag: string;
  kind: OptionKind;
  help: string;
}

export type OptionValue = string | string[] | boolean;

export type ReadOptions =
  | { ok: true; get: (flag: string) => OptionValue | undefined; str: (flag: string) => string | undefined }
  | { ok: false; error: string }
  | { ok: false; help: true };

/** `CHORIA_EDGE_BROKER_` + `max-hops` → `CHORIA_EDGE_BROKER_MAX_HOPS`. */
export function envName(prefix: string, flag: string): string {
  return prefix + flag.toUpperCase().replaceAll("-", "_");
}

export function readOptions(
  options: readonly OptionSpec[],
  prefix: string,
  argv: readonly string[],
  env: Record<string, string | undefined>,
): ReadOptions {
  const byFlag = new Map(options.map((o) => [o.flag, o]));
  const fromFlags = new Map<string, OptionValue>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: false, help: true };
    if (!arg.startsWith("--")) return { ok: false, error: `unexpected argument '${arg}'` };
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
    if (option.kind === "list") {
      const previous = fromFlags.get(name);
      fromFlags.set(name, [...(Array.isArray(previous) ? previous : []), ...splitList(value)]);
    } else {
      fromFlags.set(name, value);
    }
  }
  const fromEnv = (flag: string): OptionValue | undefined => {
    const option = byFlag.get(flag);
    const value = env[envName(prefix, flag)];
    if (option === undefined || value === undefined || value === "") return undefined;
    return option.kind === "list" ? splitList(value) : option.kind === "bool" ? isTrue(value) : value;
  };
  const get = (flag: string) => fromFlags.get(flag) ?? fromEnv(flag);
  return {
    ok: true,
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
