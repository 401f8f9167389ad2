// The choria-edge command as an operator runs it (its own process, from the checkout), and output
// captured from the commands the tests run in-process.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const CLI = join(ROOT, "bin", "choria-edge.mjs");

export function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
      stdin: async () => "",
    },
    stdout: () => out.join(""),
    stderr: () => err.join(""),
  };
}

/** The command with its own CLI entry, as an operator runs it; resolves with its exit and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once("exit", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done, output: () => stdout, errors: () => stderr };
}

/** Resolves once the command has printed "Ready." and the banner after it; throws with its output if it exits or takes too long. */
export async function untilReady(cli: ReturnType<typeof runCli>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cli.output().includes("Ready.")) {
    if (cli.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the stack did not start:\n${cli.output()}\n${cli.errors()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The banner is written at once, but in chunks.
  await new Promise((r) => setTimeout(r, 200));
}
