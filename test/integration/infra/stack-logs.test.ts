// The local stack's log files hold audit lines and server logs: only their owner may read them.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer } from "../../../infra/nats-server.ts";
import { launch, privateLogFile } from "../../../infra/stack.ts";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-stack-logs-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe("local stack log files", () => {
  it("a service's log is written with mode 0600, and an older, looser one is tightened", async () => {
    const fresh = launch("fresh", dir, ["--help"]);
    await fresh.exited;
    await fresh.stop();
    expect(await readFile(fresh.logPath, "utf8")).toContain("usage: choria-edge");
    expect(await modeOf(fresh.logPath)).toBe(0o600);

    const older = join(dir, "older.log");
    await writeFile(older, "from an earlier run\n");
    await chmod(older, 0o644);
    const again = launch("older", dir, ["--help"]);
    await again.exited;
    await again.stop();
    expect(await readFile(older, "utf8")).toMatch(/^from an earlier run\n[\s\S]*usage: choria-edge/);
    expect(await modeOf(older)).toBe(0o600);
  });

  it("a nats-server's log file is made 0600 before the server starts, and stays so while it writes", async () => {
    const path = join(dir, "nats.log");
    const server = await startNatsServer({ name: "logs", logFile: await privateLogFile(path) });
    try {
      expect((await readFile(path, "utf8")).length).toBeGreaterThan(0);
      expect(await modeOf(path)).toBe(0o600);
    } finally {
      await server.dispose();
    }
  });
});
