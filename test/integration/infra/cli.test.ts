// The CLI's own answers, from the real entry point in a process of its own: the version, a mistyped
// command, a stack started where there is no nats-server, and files that were never made.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
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

  it("stack, where no nats-server can be found, says what to install and starts nothing", async () => {
    const { code, stdout, stderr } = await cli(["stack"], {
      PATH: empty,
      NATS_SERVER_BIN: "",
      CHORIA_EDGE_PEERS: join(empty, "peers"),
    });
    expect(code).toBe(1);
    expect(stderr).toContain("choria-edge stack needs nats-server 2.9.0 or newer, and found none");
    expect(stderr).toContain("Debian/Ubuntu:  sudo apt-get install nats-server");
    expect(stderr).toContain("macOS:          brew install nats-server");
    expect(stderr).toContain(
      `bash infra/peers.sh   (builds nats-server v2.15.3 into ${join(empty, "peers")}, which the stack then finds`,
    );
    expect(stderr).not.toMatch(/ENOENT|\n\s+at /);
    expect(stdout).not.toContain("Ready");
    expect(await readdir(home)).toEqual([]);
  }, 90_000);

  it("a missing certificate, key or secret is named, with what makes it", async () => {
    const missing = join(empty, "missing.pem");
    const made = "'choria-edge keys' creates the demo certificates (npm start does too)";
    // Where the demo PKI would be (no stack has run from this home), and a file the caller named.
    const pki = join(home, "pki");
    const [trace, named, gateway, simulate, hook] = await Promise.all([
      cli(["trace", "node1"]),
      cli(["trace", "node1", "--cert", missing]),
      cli(["gateway", "--clusters", "dc1=mcollective"]),
      cli(["simulate", "--nodes", "1"]),
      cli(["hook", "send", "github-push", "--secret-file", missing, "--print-curl"]),
    ]);
    expect(trace).toMatchObject({ code: 2 });
    expect(trace.stderr).toBe(
      `choria-edge trace: the client certificate ${pki}/rip.mcollective.pem does not exist: ${made}, or pass --cert <file>\n`,
    );
    expect(named).toMatchObject({ code: 2 });
    expect(named.stderr).toBe(`choria-edge trace: the client certificate ${missing} does not exist\n`);
    expect(gateway.code).toBe(2);
    expect(gateway.stderr.split("\n")[0]).toBe(
      `choria-edge gateway: the gateway certificate ${pki}/gateway.privileged.mcollective.pem does not exist: ${made}, or pass --cert <file>`,
    );
    expect(simulate).toMatchObject({ code: 1 });
    expect(simulate.stderr).toBe(
      `choria-edge: the CA certificate ${pki}/ca.pem does not exist: ${made}, or pass --ca <file>\n`,
    );
    expect(hook).toMatchObject({ code: 1 });
    expect(hook.stderr).toBe(`choria-edge hook: the secret file (--secret-file) ${missing} does not exist\n`);
    expect(existsSync(join(home, "pki"))).toBe(false);
  }, 90_000);
});
