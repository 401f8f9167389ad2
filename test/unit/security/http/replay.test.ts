import { describe, expect, it } from "vitest";
import { MemoryKvBucket } from "../../../../lib/kv/mod.ts";
import {
  KvReplayStore,
  MemoryReplayStore,
  type ReplayBucket,
  ReplayStoreFull,
} from "../../../../lib/security/http/mod.ts";

describe("MemoryReplayStore", () => {
  it("answers true once per key until the claim expires", async () => {
    let clock = 1_000_000;
    const store = new MemoryReplayStore({ now: () => clock });
    expect(await store.claim("a", 10)).toBe(true);
    expect(await store.claim("a", 10)).toBe(false);
    expect(await store.claim("b", 10)).toBe(true);
    clock += 9_999;
    expect(await store.claim("a", 10)).toBe(false);
    clock += 1;
    expect(await store.claim("a", 10)).toBe(true);
  });

  it("forgets expired claims as it goes", async () => {
    let clock = 0;
    const store = new MemoryReplayStore({ now: () => clock });
    for (let i = 0; i < 100; i++) await store.claim(`k${i}`, 1);
    expect(store.size).toBe(100);
    clock += 1_000;
    await store.claim("later", 1);
    expect(store.size).toBe(1);
  });

  it("refuses to forget live claims when full, and makes room from expired ones", async () => {
    let clock = 0;
    const store = new MemoryReplayStore({ maxEntries: 3, now: () => clock });
    await store.claim("long", 60);
    await store.claim("short-1", 1);
    await store.claim("short-2", 1);
    await expect(store.claim("more", 1)).rejects.toBeInstanceOf(ReplayStoreFull);
    clock += 1_000;
    expect(await store.claim("more", 1)).toBe(true);
    expect(await store.claim("long", 60)).toBe(false);
  });
});

describe("KvReplayStore", () => {
  it("claims through create, with a key safe for any bucket", async () => {
    const kv = new MemoryKvBucket("replay");
    const store = new KvReplayStore(kv, { windowSeconds: 360 });
    expect(await store.claim("key-1\nnonce:a b*>.", 300)).toBe(true);
    expect(await store.claim("key-1\nnonce:a b*>.", 300)).toBe(false);
    const keys: string[] = [];
    for await (const entry of kv.latest(">")) keys.push(entry.key);
    expect(keys).toEqual([expect.stringMatching(/^replay\.[0-9a-f]{64}$/)]);
  });

  it("takes over a claim that lapsed while the bucket still holds it, once", async () => {
    let clock = 0;
    const kv = new MemoryKvBucket("replay");
    const a = new KvReplayStore(kv, { windowSeconds: 360, now: () => clock });
    const b = new KvReplayStore(kv, { windowSeconds: 360, now: () => clock });
    expect(await a.claim("k", 5)).toBe(true);
    clock += 4_999;
    expect(await b.claim("k", 5)).toBe(false);
    clock += 1;
    const both = await Promise.all([a.claim("k", 5), b.claim("k", 5)]);
    expect(both.filter(Boolean)).toHaveLength(1);
  });

  it("creates again when the bucket expired the key between create and get", async () => {
    let creates = 0;
    const racing: ReplayBucket = {
      create: async () => (++creates > 1 ? 1 : undefined),
      get: async () => undefined,
      update: () => Promise.reject(new Error("nothing to update")),
    };
    expect(await new KvReplayStore(racing, { windowSeconds: 60 }).claim("k", 10)).toBe(true);
    expect(creates).toBe(2);
  });

  it("refuses claims longer than the bucket keeps them", async () => {
    const store = new KvReplayStore(new MemoryKvBucket("replay"), { windowSeconds: 60 });
    await expect(store.claim("k", 61)).rejects.toBeInstanceOf(RangeError);
  });
});
