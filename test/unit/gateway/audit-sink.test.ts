import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { auditSink, parseAuditTarget } from "../../../functions/audit-sink.ts";
import { gatewaySettings } from "../../../functions/gateway-env.ts";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("--audit", () => {
  it("takes stdout, stderr, off and file:<path>, and names the choices otherwise", () => {
    expect(parseAuditTarget("stdout")).toBe("stdout");
    expect(parseAuditTarget("off")).toBe("off");
    expect(parseAuditTarget("file:/var/log/audit.jsonl")).toEqual({ file: "/var/log/audit.jsonl" });
    expect(parseAuditTarget("file:")).toEqual({
      error: expect.stringMatching(/stdout, stderr, file:<path> or off/),
    });
    expect(parseAuditTarget("syslog")).toEqual({ error: expect.stringMatching(/not syslog/) });
  });

  it("appends to a file made earlier, narrowing its mode to 0600", async () => {
    dir = await mkdtemp(join(tmpdir(), "choria-edge-audit-"));
    const path = join(dir, "audit.jsonl");
    await writeFile(path, "earlier\n", { mode: 0o644 });
    const sink = auditSink({ file: path });
    sink.write({ method: "POST", path: "/v1/rpc", decision: "accepted", status: 200 });
    sink.close();
    sink.close();
    const lines = (await readFile(path, "utf8")).trim().split("\n");
    expect(lines[0]).toBe("earlier");
    expect(JSON.parse(lines[1] ?? "")).toMatchObject({ decision: "accepted", status: 200 });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it("is refused with its own message in the gateway's settings, as is a bad --metrics-listen", async () => {
    expect(await gatewaySettings(["--audit", "syslog"], {})).toEqual({
      ok: false,
      error: expect.stringMatching(/^--audit:/),
    });
    expect(await gatewaySettings(["--metrics-listen", "9464"], {})).toEqual({
      ok: false,
      error: expect.stringMatching(/^--metrics-listen:/),
    });
  });
});
