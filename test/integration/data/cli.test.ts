// `choria-edge data` against a real nats-server with JetStream: what an operator sets is what a trigger
// reads (the same bucket and keys), and a lock a gateway holds shows with its holder.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runData } from "../../../cli/data.ts";
import { DataStore, DEFAULT_DATA_BUCKET, Locks } from "../../../lib/data/mod.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";

let server: NatsServer;
let bus: NatsBus;
let store: DataStore;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  bus = await connectNats({ servers: server.url, name: "data-cli-test" });
  store = new DataStore(await NatsKvBucket.open(bus.connection, { name: DEFAULT_DATA_BUCKET, ttlMs: 0 }));
});

afterAll(async () => {
  await bus?.close();
  await server?.dispose();
});

async function data(args: string[], stdin = "") {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runData([...args, "--server", server.url], {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    stdin: async () => stdin,
  });
  return { code, out: out.join(""), err: err.join("") };
}

describe("choria-edge data", () => {
  it("puts a value a trigger then reads, gets it back, and deletes it", async () => {
    expect(await data(["put", "deploy/env", "staging"])).toMatchObject({ code: 0 });
    expect((await store.get("deploy/env"))?.value).toBe("staging");
    expect(await data(["get", "deploy/env"])).toMatchObject({ code: 0, out: "staging\n" });
    const json = await data(["get", "deploy/env", "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({
      key: "deploy/env",
      value: "staging",
      revision: expect.any(Number),
    });
    expect(await data(["delete", "deploy/env"])).toMatchObject({ code: 0 });
    expect(await data(["get", "deploy/env"])).toMatchObject({ code: 1, err: "no value for deploy/env\n" });
  });

  it("reads a value from standard input with -", async () => {
    expect(await data(["put", "deploy/notes", "-"], "line one\nline two\n")).toMatchObject({ code: 0 });
    expect((await store.get("deploy/notes"))?.value).toBe("line one\nline two");
  });

  it("shows who holds a lock, and says when nobody does", async () => {
    const lock = (await new Locks(store).acquire("deploy", {
      holder: "github-push/d1",
      ttlMs: 60_000,
      timeoutMs: 0,
    }))!;
    const held = await data(["lock", "deploy"]);
    expect(held.code).toBe(0);
    expect(held.out).toContain("deploy is held by github-push/d1");
    await lock.release();
    expect(await data(["lock", "deploy"])).toMatchObject({ code: 1, out: "deploy is free\n" });
  });

  it("refuses bad keys and bad usage with exit 2", async () => {
    expect(await data(["put", "no spaces allowed", "x"])).toMatchObject({
      code: 2,
      err: expect.stringContaining("invalid key"),
    });
    expect((await data(["put", "only-a-key"])).code).toBe(2);
    expect((await data(["frobnicate", "x"])).code).toBe(2);
  });
});
