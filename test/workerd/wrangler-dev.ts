// Runs the real Worker (wrangler.toml, functions/cloudflare.ts) in workerd through `wrangler dev` on a
// free 127.0.0.1 port. Secrets go in through an env file; the process group is killed on stop so that no
// workerd is left behind.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../support/ports.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");

export interface WranglerDev {
  readonly url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `wrangler dev` with `vars` (secrets included) and waits until /healthz answers. */
export async function startWranglerDev(
  vars: Record<string, string>,
  timeoutMs = 60_000,
  /** Whether /healthz's status means serving: a Worker meant to refuse its settings answers 500. */
  serving: (status: number) => boolean = (status) => status === 200,
): Promise<WranglerDev> {
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-workerd-"));
  const envFile = join(dir, "worker.env");
  await writeFile(envFile, Object.entries(vars).map(envLine).join("\n"), { mode: 0o600 });
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const child: ChildProcess = spawn(
    WRANGLER,
    [
      "dev",
      "--config",
      join(ROOT, "wrangler.toml"),
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      join(dir, "state"),
      "--env-file",
      envFile,
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
    ],
    {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" },
    },
  );
  running.add(child);
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((done) => child.once("exit", () => done()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child, "SIGTERM");
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    await rm(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`wrangler dev exited early:\n${output}`);
    }
    const status = await fetch(`${url}/healthz`).then(
      async (res) => {
        await res.arrayBuffer();
        return res.status;
      },
      () => 0,
    );
    if (status !== 0 && serving(status)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev not ready within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, output: () => output, stop };
}

/**
 * One dotenv line. Double quotes are the only way to a line break (dotenv expands `\n` there, which PEM
 * text needs) but leave `\"` as it is, so JSON goes in single quotes, which dotenv takes literally.
 */
function envLine([key, value]: [string, string]): string {
  if (!value.includes("\n")) {
    if (value.includes("'"))
      throw new Error(`${key}: a value with a single quote cannot go in a dotenv file`);
    // wrangler expands `${NAME}` even in single quotes; `\$` keeps a trigger file's `${inputs.x}` as it is.
    return `${key}='${value.replaceAll("$", "\\$")}'`;
  }
  if (/["\\]/.test(value)) throw new Error(`${key}: a multi-line value with quotes or backslashes`);
  return `${key}="${value.replaceAll("\n", "\\n")}"`;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) killGroup(child, "SIGKILL");
});
