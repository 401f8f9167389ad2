// The package as `npm pack` makes it, installed into an empty folder with production dependencies only,
// as an operator would install it: no TypeScript, no loader, and the commands work — `--version`, and
// `stack` serving a request that `req` (also the installed one) sends through it.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../support/ports.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const dirs: string[] = [];
let app: string;
let bin: string;
let packed: { files: { path: string }[]; filename: string };

function npm(args: string[], cwd: string) {
  const result = spawnSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd,
    encoding: "utf8",
  });
  if (result.status !== 0)
    throw new Error(`npm ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

beforeAll(async () => {
  const out = await mkdtemp(join(tmpdir(), "choria-edge-pack-"));
  app = await mkdtemp(join(tmpdir(), "choria-edge-installed-"));
  dirs.push(out, app);
  // The prepack build prints to the same stdout before npm's JSON.
  const report = npm(["pack", "--json", "--pack-destination", out], ROOT);
  packed = (JSON.parse(report.slice(report.search(/^\[/m))) as (typeof packed)[])[0]!;
  npm(["install", "--omit=dev", "--prefer-offline", join(out, packed.filename)], app);
  bin = join(app, "node_modules/.bin/choria-edge");
}, 240_000);

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("the npm package", () => {
  it("ships the bundled CLI and no sources", () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain("dist/choria-edge.mjs");
    expect(paths).toContain("bin/choria-edge.mjs");
    expect(paths.filter((p) => p.endsWith(".ts"))).toEqual([]);
  });

  it("installs without tsx and prints its version", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    const result = spawnSync(bin, ["--version"], { cwd: app, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe(pkg.version);
    const tsx = spawnSync("npm", ["ls", "tsx", "--all", "--parseable"], { cwd: app, encoding: "utf8" });
    expect(tsx.stdout.trim()).toBe("");
  });

  it("runs the local stack, and its req reaches the stack's nodes", async () => {
    const home = join(app, ".choria-edge");
    const env = { ...process.env, CHORIA_EDGE_HOME: home };
    const ports = [
      "--federation-port",
      "--websocket-port",
      "--collective-port",
      "--metrics-port",
      "--gateway-port",
    ];
    const args = ["stack", "--nodes", "3", "--brokers", "1"];
    for (const flag of ports) args.push(flag, String(await freePort()));
    const stack: ChildProcess = spawn(bin, args, { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    stack.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    stack.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      const deadline = Date.now() + 100_000;
      while (!output.includes("Ready.")) {
        if (stack.exitCode !== null || Date.now() > deadline)
          throw new Error(`the stack did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const req = spawnSync(bin, ["req", "rpcutil", "ping", "--json"], { cwd: app, env, encoding: "utf8" });
      expect(req.stderr).toBe("");
      expect(req.status).toBe(0);
      const answer = JSON.parse(req.stdout) as { summary?: { ok?: number } };
      expect(answer.summary?.ok).toBe(3);
    } finally {
      const exited = new Promise((r) => stack.once("exit", r));
      stack.kill("SIGINT");
      const timer = setTimeout(() => stack.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
  }, 150_000);
});
