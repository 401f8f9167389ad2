// The systemd units in infra/systemd as systemd itself reads them: `systemd-analyze verify` names every
// unknown key, bad value or missing section, and the units run the installed CLI with the settings files
// the README describes.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const UNITS = resolve(import.meta.dirname, "../../../infra/systemd");
const units = readdirSync(UNITS).filter((name) => name.endsWith(".service"));

describe("systemd units", () => {
  it("are the broker, collector and gateway", () => {
    expect(units.sort()).toEqual([
      "choria-edge-broker@.service",
      "choria-edge-collector@.service",
      "choria-edge-gateway.service",
    ]);
  });

  it.each(units)("%s passes systemd-analyze verify without a warning", (unit) => {
    const result = spawnSync("systemd-analyze", ["verify", join(UNITS, unit)], { encoding: "utf8" });
    expect(result.error).toBeUndefined();
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it.each(units)("%s runs choria-edge as an unprivileged user, restarting on failure", (unit) => {
    const text = readFileSync(join(UNITS, unit), "utf8");
    const command = /^choria-edge-(\w+)/.exec(unit)![1];
    expect(text).toMatch(new RegExp(`^ExecStart=/usr/bin/env choria-edge ${command}\\b`, "m"));
    expect(text).toMatch(new RegExp(`^EnvironmentFile=/etc/choria-edge/${command}\\.env$`, "m"));
    expect(text).toMatch(/^DynamicUser=yes$/m);
    expect(text).toMatch(/^NoNewPrivileges=yes$/m);
    expect(text).toMatch(/^Restart=on-failure$/m);
  });
});
