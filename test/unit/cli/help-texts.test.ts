// What every command answers to `--help` and to an option it does not know, kept byte for byte: the usage
// texts live apart from the code that runs the commands (so that `--help` loads little), and this is
// what keeps a move between the two from changing a word. The process is the built CLI, as users run it,
// built below dist/ so that the packages it leaves outside resolve from the project's node_modules.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildCli } from "../../../infra/build.ts";

const COMMANDS = [
  "stack",
  "gateway",
  "req",
  "jobs",
  "hook",
  "data",
  "broker",
  "observe",
  "trace",
  "collector",
  "simulate",
  "deploy",
  "doctor",
  "keys",
];

const ROOT = resolve(import.meta.dirname, "../../..");
let dir: string;

beforeAll(async () => {
  await mkdir(join(ROOT, "dist"), { recursive: true });
  dir = await mkdtemp(join(ROOT, "dist/help-texts-"));
  await buildCli(dir);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Exit code, stdout and stderr of the built CLI, with no CHORIA_EDGE_* setting of this machine's. */
function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CHORIA_")));
  const child = spawn(process.execPath, [join(dir, "choria-edge.mjs"), ...argv], {
    cwd: dir,
    env: { ...env, CHORIA_EDGE_HOME: join(dir, "home") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

it.each([
  [[]],
  [["--help"]],
  [["rq"]],
  [["no-such-command"]],
  ...COMMANDS.flatMap((command) => [[[command, "--help"]], [[command, "--no-such-flag"]]]),
])("choria-edge %j answers as it always has", async (argv) => {
  expect(await run(argv)).toMatchSnapshot();
});
