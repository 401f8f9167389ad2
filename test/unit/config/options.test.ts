import { describe, expect, it } from "vitest";
import { envName, type OptionSpec, optionsUsage, readOptions } from "../../../lib/config/options.ts";

const PREFIX = "CHORIA_EDGE_TEST_";
const OPTIONS: OptionSpec[] = [
  { flag: "name", kind: "string", help: "a name" },
  { flag: "max-hops", kind: "int", help: "a number" },
  { flag: "servers", kind: "list", help: "a list" },
  { flag: "verbose", kind: "bool", help: "a switch" },
];

function read(argv: string[], env: Record<string, string> = {}) {
  const result = readOptions(OPTIONS, PREFIX, argv, env);
  if (!result.ok) throw new Error(JSON.stringify(result));
  return result;
}

describe("readOptions", () => {
  it("takes flags over environment variables, in both flag spellings", () => {
    const env = { CHORIA_EDGE_TEST_NAME: "from-env", CHORIA_EDGE_TEST_MAX_HOPS: "3" };
    expect(read(["--name", "from-flag"], env).get("name")).toBe("from-flag");
    expect(read(["--name=eq"], env).get("name")).toBe("eq");
    expect(read([], env).get("max-hops")).toBe("3");
    expect(read([], { CHORIA_EDGE_TEST_NAME: "" }).get("name")).toBeUndefined();
  });

  it("splits lists on commas, adds repeated flags, and lets flags replace the environment's list", () => {
    const env = { CHORIA_EDGE_TEST_SERVERS: "nats://a, nats://b" };
    expect(read([], env).get("servers")).toEqual(["nats://a", "nats://b"]);
    expect(read(["--servers", "nats://c", "--servers=nats://d,nats://e"], env).get("servers")).toEqual([
      "nats://c",
      "nats://d",
      "nats://e",
    ]);
  });

  it("reads booleans bare, with a value, and from the environment", () => {
    expect(read(["--verbose"]).get("verbose")).toBe(true);
    expect(read(["--verbose=no"]).get("verbose")).toBe(false);
    expect(read([], { CHORIA_EDGE_TEST_VERBOSE: "on" }).get("verbose")).toBe(true);
  });

  it("refuses unknown options, stray arguments and missing values, and answers --help", () => {
    expect(readOptions(OPTIONS, PREFIX, ["--nope"], {})).toEqual({
      ok: false,
      error: "unknown option '--nope'",
    });
    expect(readOptions(OPTIONS, PREFIX, ["stray"], {})).toEqual({
      ok: false,
      error: "unexpected argument 'stray'",
    });
    expect(readOptions(OPTIONS, PREFIX, ["--name"], {})).toEqual({
      ok: false,
      error: "option '--name' needs a value",
    });
    expect(readOptions(OPTIONS, PREFIX, ["-h"], {})).toEqual({ ok: false, help: true });
  });

  it("keeps positionals in order when a command takes them: '-' is one, '--' ends the options", () => {
    const read = readOptions(
      OPTIONS,
      PREFIX,
      ["put", "--verbose", "k", "-", "--", "--name"],
      {},
      { positionals: true },
    );
    expect(read.ok && read.positionals).toEqual(["put", "k", "-", "--name"]);
    expect(read.ok && read.values.verbose).toBe(true);
    expect(readOptions(OPTIONS, PREFIX, ["-x"], {}, { positionals: true })).toEqual({
      ok: false,
      error: "unknown option '-x' (put '--' before an argument that starts with '-')",
    });
  });

  it("adds up a repeated flag as given, and falls back to an option's default", () => {
    const options = [
      { flag: "identity", kind: "multiple" },
      { flag: "scheme", kind: "string", default: "github" },
    ] as const;
    const read = readOptions(options, PREFIX, ["--identity", "a,b", "--identity=c"], {});
    expect(read.ok && read.values).toEqual({ identity: ["a,b", "c"], scheme: "github" });
    const none = readOptions(options, PREFIX, [], {});
    expect(none.ok && none.values).toEqual({ identity: undefined, scheme: "github" });
  });

  it("lists every option with its environment variable in the usage text", () => {
    const usage = optionsUsage(OPTIONS, PREFIX);
    for (const option of OPTIONS) expect(usage).toContain(envName(PREFIX, option.flag));
    expect(usage).toContain("--servers <a,b>");
    expect(usage).toMatch(/--verbose\s+a switch/);
  });
});
