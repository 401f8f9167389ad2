// What the local stack checks before it starts: versions compared as numbers, the nats-server found
// where the operator put it.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  checkNode,
  findNatsServer,
  MissingPrerequisite,
  parseNatsServerVersion,
  peersNatsServer,
  versionAtLeast,
} from "../../../infra/prerequisites.ts";

describe("prerequisites", () => {
  it("compares versions part by part, as numbers", () => {
    expect(versionAtLeast("2.10.0", "2.9.0")).toBe(true);
    expect(versionAtLeast("2.9.10", "2.9.0")).toBe(true);
    expect(versionAtLeast("2.9", "2.9.0")).toBe(true);
    expect(versionAtLeast("2.8.4", "2.9.0")).toBe(false);
    expect(versionAtLeast("20.18.3", "20.19.0")).toBe(false);
    expect(versionAtLeast("22.1.0", "20.19.0")).toBe(true);
  });

  it("reads the version nats-server prints", () => {
    expect(parseNatsServerVersion("nats-server: v2.9.10\n")).toBe("2.9.10");
    expect(parseNatsServerVersion("nats-server: v2.15.3")).toBe("2.15.3");
    expect(parseNatsServerVersion("nothing here")).toBeUndefined();
  });

  it("refuses a Node older than 20.19, saying what to install", () => {
    expect(() => checkNode("20.18.0")).toThrow(MissingPrerequisite);
    expect(() => checkNode("20.18.0")).toThrow(/needs Node 20\.19\.0 or newer; this is Node 20\.18\.0/);
    expect(() => checkNode("20.19.0")).not.toThrow();
  });

  it("finds infra/peers.sh's build where the script puts it", () => {
    expect(peersNatsServer({ CHORIA_EDGE_PEERS: "/p" })).toBe("/p/nats-server-v2.15.3/nats-server");
    expect(peersNatsServer({ XDG_CACHE_HOME: "/c" })).toBe(
      join("/c", "choria-edge", "peers", "nats-server-v2.15.3", "nats-server"),
    );
  });

  it("takes NATS_SERVER_BIN first, and names it when it is not a program", async () => {
    const onPath = await findNatsServer();
    expect(onPath.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(await findNatsServer({ NATS_SERVER_BIN: onPath.path, PATH: "" })).toMatchObject({
      path: onPath.path,
      from: "NATS_SERVER_BIN",
    });
    await expect(findNatsServer({ NATS_SERVER_BIN: "/nowhere/nats-server", PATH: "" })).rejects.toThrow(
      /NATS_SERVER_BIN is \/nowhere\/nats-server, which is not an executable file\.\nInstall nats-server/,
    );
  });
});
