import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Metafile } from "esbuild";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildCli } from "../../../infra/build.ts";

let dir: string;
let outputs: Metafile["outputs"];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-cli-weight-"));
  ({ outputs } = await buildCli(dir));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The output files a process holds after importing these, statically and (when asked) dynamically. */
function loadedBy(starts: (string | undefined)[], dynamic: boolean): Set<string> {
  const loaded = new Set<string>();
  const load = (name: string | undefined) => {
    if (name === undefined || loaded.has(name)) return;
    loaded.add(name);
    for (const i of outputs[name]?.imports ?? [])
      if (!i.external && (i.kind === "import-statement" || (dynamic && i.kind === "dynamic-import")))
        load(i.path);
  };
  for (const start of starts) load(start);
  return loaded;
}

/** The chunk whose entry point is this source file (a command's module, loaded by main on demand). */
function chunkOf(source: string): string | undefined {
  return Object.keys(outputs).find((name) => outputs[name]?.entryPoint === source);
}

const main = () => Object.keys(outputs).find((name) => name.endsWith("/choria-edge.mjs"));

// `choria-edge req` loads main, req's chunks and what they import statically. zod from
// node_modules is ~100 files, every locale among them; bundled and imported as a namespace, a chunk holds
// only the schemas used (a `{ z }` import anywhere brings every locale back into the shared chunk).
it("the chunks `req` loads hold no zod locale beyond en, and no zod from node_modules", () => {
  // Main, req's usage chunk and the runner it imports once the arguments are read.
  const loaded = loadedBy([main(), chunkOf("cli/req.ts")], false);
  for (const name of [...loaded]) for (const more of loadedBy([name], true)) loaded.add(more);
  const found = [...loaded].flatMap((name) => [
    ...Object.keys(outputs[name]?.inputs ?? {}).filter((input) => /zod\/v4\/locales\/(?!en\.js)/.test(input)),
    ...(outputs[name]?.imports ?? [])
      .filter((i) => i.external && /^zod(\/|$)/.test(i.path))
      .map((i) => i.path),
  ]);
  expect(loaded.has(chunkOf("cli/req-run.ts") ?? "")).toBe(true);
  expect(found).toEqual([]);
  // Nor the NATS client, which req never uses (it came with the local-stack helpers of trace and observe).
  const running = new Set([
    ...loadedBy([main(), chunkOf("cli/req.ts")], false),
    ...loadedBy([chunkOf("cli/req-run.ts")], true),
  ]);
  const nats = [...running].flatMap((name) =>
    (outputs[name]?.imports ?? [])
      .filter((i) => i.external && i.path.startsWith("@nats-io/"))
      .map((i) => i.path),
  );
  expect(nats).toEqual([]);
});

// `<command> --help` (and an option it does not know) runs main and the command's usage chunk only:
// building the protocol and security schemas, loading re2js, the NATS client or the AWS SDK, cost
// `req --help` twice what Node's own start-up does, and `simulate --help` or `doctor --help` more.
const COMMANDS = [
  ["req", "cli/req.ts", "cli/req-run.ts"],
  ["jobs", "cli/jobs.ts", "cli/jobs-run.ts"],
  ["hook", "cli/hook.ts", "cli/hook-run.ts"],
  ["keys", "cli/keys.ts", "infra/pki.ts"],
  ["stack", "cli/stack.ts", "infra/stack.ts"],
  ["data", "cli/data.ts", "cli/data-run.ts"],
  ["observe", "cli/observe.ts", "cli/observe-run.ts"],
  ["trace", "cli/trace.ts", "cli/trace-run.ts"],
  ["simulate", "cli/simulate.ts", "cli/simulate-run.ts"],
  ["deploy", "cli/deploy.ts", "cli/deploy-lambda.ts"],
  ["doctor", "cli/doctor.ts", "cli/doctor-run.ts"],
  ["gateway", "cli/gateway.ts", "functions/node.ts"],
  ["broker", "cli/broker.ts", "functions/broker.ts"],
  ["collector", "cli/collector.ts", "functions/result-collector.ts"],
] as const;

/** What of the forbidden weight these output files hold: zod, lib/'s schemas, packages. */
function heavyIn(loaded: Set<string>): string[] {
  return [...loaded].flatMap((name) => [
    ...Object.keys(outputs[name]?.inputs ?? {}).filter((input) =>
      /node_modules\/zod\/|^lib\/(protocol|security)\//.test(input),
    ),
    ...(outputs[name]?.imports ?? [])
      .filter((i) => i.external && !i.path.startsWith("node:"))
      .map((i) => i.path),
  ]);
}

it.each(COMMANDS)(
  "`%s --help` loads no zod, no schema of lib/, no package and not what runs the command",
  (_, usage, runner) => {
    expect(chunkOf(usage)).toBeDefined();
    const loaded = loadedBy([main(), chunkOf(usage)], false);
    expect(loaded.has(chunkOf(runner) ?? "")).toBe(false);
    expect(heavyIn(loaded)).toEqual([]);
  },
);

it("`choria-edge --help` loads main alone, and every command main can load is in the table above", () => {
  expect(heavyIn(loadedBy([main()], false))).toEqual([]);
  const loadable = (outputs[main() ?? ""]?.imports ?? [])
    .filter((i) => i.kind === "dynamic-import")
    .map((i) => outputs[i.path]?.entryPoint);
  expect(loadable.sort()).toEqual(COMMANDS.map(([, usage]) => usage).sort());
});
