// The writes of NatsKvBucket on a real nats-server: they publish with their own acknowledgement matching
// (not a request each), and must keep the KV client's meaning of create, update and put.
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";

let server: NatsServer;
let bus: NatsBus;
let bucket: NatsKvBucket;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  bus = await connectNats({ servers: server.url, name: "kv-bucket-test" });
  bucket = await NatsKvBucket.open(bus.connection, { name: "kv_writes", ttlMs: 60_000 });
});

afterAll(async () => {
  await bus?.close();
  await server?.dispose();
});

describe("NatsKvBucket writes", () => {
  it("create writes once; a second create, and an update at a stale revision, are refused", async () => {
    const first = await bucket.create("a.one", "1");
    expect(first).toBeGreaterThan(0);
    expect(await bucket.create("a.one", "2")).toBeUndefined();
    const second = await bucket.update("a.one", "3", first!);
    expect(second).toBeGreaterThan(first!);
    expect(await bucket.update("a.one", "4", first!)).toBeUndefined();
    expect(new TextDecoder().decode((await bucket.get("a.one"))!.value)).toBe("3");
  });

  it("create takes a deleted key, as the KV client's create does", async () => {
    await bucket.put("a.gone", "x");
    await bucket.delete("a.gone");
    expect(await bucket.create("a.gone", "back")).toBeGreaterThan(0);
  });

  it("many writes at once each get their own revision and reply", async () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `many.k${i}`);
    const revisions = await Promise.all(keys.map((key, i) => bucket.create(key, String(i))));
    expect(new Set(revisions).size).toBe(keys.length);
    const again = await Promise.all(keys.slice(0, 10).map((key) => bucket.create(key, "dup")));
    expect(again).toEqual(Array(10).fill(undefined));
  });

  it("count says how many messages match a filter, without reading them", async () => {
    await Promise.all(["c.r.a", "c.r.b", "c.r.c", "c.t.0"].map((key) => bucket.put(key, "x")));
    expect(await bucket.count("c.r.*")).toBe(3);
    await bucket.delete("c.r.a");
    // A delete marker replaces the key's value and is a message of its own.
    expect(await bucket.count("c.r.*")).toBe(3);
    expect(await bucket.count("c.none.*")).toBe(0);
  });

  it("a write with no stream to take it fails at once instead of waiting for an acknowledgement", async () => {
    const other = await NatsKvBucket.open(bus.connection, { name: "kv_dropped", ttlMs: 60_000 });
    await (await jetstreamManager(bus.connection)).streams.delete("KV_kv_dropped");
    const started = performance.now();
    await expect(other.put("a.b", "x")).rejects.toThrow(/503/);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
