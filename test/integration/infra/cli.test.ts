// The CLI's own answers, from the real entry point in a process of its own: the version and a mistyped
// command.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const CLI = join(ROOT, "bin", "choria-edge.mjs");

let home: string;
let empty: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "choria-edge-cli-home-"));
  empty = await mkdtemp(join(tmpdir(), "choria-edge-cli-empty-"));
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
  await rm(empty, { recursive: true, force: true });
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: ROOT, env: { ...process.env, CHORIA_EDGE_HOME: home, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("choria-edge", () => {
  it("--version prints the package's version", async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(await cli(["--version"])).toMatchObject({ code: 0, stdout: `${version}\n` });
    expect(await cli(["-V"])).toMatchObject({ code: 0, stdout: `${version}\n` });
  }, 90_000);

  it("an unknown command is answered with the nearest one, or the list when none is near", async () => {
    const [typo, prefix, far] = await Promise.all([cli(["trcae"]), cli(["obs"]), cli(["frobnicate"])]);
    expect(typo).toMatchObject({ code: 2, stdout: "" });
    expect(typo.stderr).toMatch(/^choria-edge: unknown command 'trcae'; did you mean 'trace'\?\n/);
    expect(prefix.stderr).toMatch(/did you mean 'observe'\?/);
    expect(far.code).toBe(2);
    expect(far.stderr).toMatch(/^choria-edge: unknown command 'frobnicate'\n\nusage: choria-edge <command>/);
  }, 90_000);
});
