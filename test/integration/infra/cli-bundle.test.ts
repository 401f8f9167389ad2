// The CLI as `npm run build` bundles it (dist/choria-edge.mjs): every command loads and answers --help,
// and writes nothing. Built into node_modules/.cache so that the packages it leaves outside resolve as in
// an installed copy, with the package.json beside dist/ as there.
import { spawnSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../../infra/build.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
let installed: string;
let cwd: string;

function run(...args: string[]) {
  return spawnSync(process.execPath, [join(installed, "dist/choria-edge.mjs"), ...args], {
    cwd,
    encoding: "utf8",
  });
}

beforeAll(async () => {
  await mkdir(join(ROOT, "node_modules/.cache"), { recursive: true });
  installed = await mkdtemp(join(ROOT, "node_modules/.cache/choria-edge-cli-"));
  cwd = await mkdtemp(join(tmpdir(), "choria-edge-cwd-"));
  await buildCli(join(installed, "dist"));
  await copyFile(join(ROOT, "package.json"), join(installed, "package.json"));
}, 60_000);

afterAll(async () => {
  await rm(installed, { recursive: true, force: true });
  await rm(cwd, { recursive: true, force: true });
});

describe("the bundled CLI", () => {
  it("prints its version", () => {
    const result = run("--version");
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("loads every command it lists, and --help writes nothing", async () => {
    const commands = [...run("--help").stdout.matchAll(/^ {2}(\w+) {2}/gm)].map((m) => m[1]!);
    expect(commands).toContain("keys");
    expect(commands.length).toBeGreaterThanOrEqual(10);
    const broken = commands.flatMap((command) => {
      const result = run(command, "--help");
      return result.status === 0 && result.stdout.startsWith(`usage: choria-edge ${command}`)
        ? []
        : [
            `${command}: exit ${result.status}: ${result.stderr.split("\n").find((l) => l.includes("Error")) ?? result.stderr}`,
          ];
    });
    expect(broken).toEqual([]);
    expect(await readdir(cwd)).toEqual([]);
  });
});
