import { describe, expect, it } from "vitest";
import {
  DataStore,
  DEFAULT_MAX_VALUE_BYTES,
  InvalidKey,
  MAX_KEY_LENGTH,
  ValueTooLarge,
} from "../../../lib/data/mod.ts";
import { MemoryKvBucket } from "../../../lib/kv/memory.ts";

describe("DataStore", () => {
  it("reads back what it wrote, with a revision that grows, and forgets deleted keys", async () => {
    const store = DataStore.inMemory();
    expect(await store.get("app.version")).toBeUndefined();
    const first = await store.put("app.version", "1.2.3");
    expect(await store.get("app.version")).toEqual({ value: "1.2.3", revision: first });
    const second = await store.put("app.version", "1.2.4 ✓");
    expect(second).toBeGreaterThan(first);
    expect(await store.get("app.version")).toEqual({ value: "1.2.4 ✓", revision: second });
    await store.delete("app.version");
    expect(await store.get("app.version")).toBeUndefined();
  });

  it("stores data keys under data. so that lock names never collide with them", async () => {
    const bucket = new MemoryKvBucket();
    const store = new DataStore(bucket);
    await store.put("deploy", "x");
    expect((await bucket.get("data.deploy"))?.value).toEqual(new TextEncoder().encode("x"));
    expect(await bucket.get("deploy")).toBeUndefined();
    expect(await bucket.get("lock.deploy")).toBeUndefined();
  });

  it("compare-and-set creates only a missing key and updates only the expected revision", async () => {
    const store = DataStore.inMemory();
    const created = await store.compareAndSet("counter", "1", undefined);
    expect(created.ok).toBe(true);
    const createdRevision = created.ok ? created.revision : -1;

    expect(await store.compareAndSet("counter", "again", undefined)).toEqual({
      ok: false,
      current: createdRevision,
    });
    const updated = await store.compareAndSet("counter", "2", createdRevision);
    expect(updated.ok).toBe(true);
    const updatedRevision = updated.ok ? updated.revision : -1;
    // A writer that read revision `createdRevision` lost the race and learns the current revision.
    expect(await store.compareAndSet("counter", "stale", createdRevision)).toEqual({
      ok: false,
      current: updatedRevision,
    });
    expect((await store.get("counter"))?.value).toBe("2");

    await store.delete("counter");
    expect(await store.compareAndSet("counter", "x", updatedRevision)).toEqual({ ok: false });
    expect((await store.compareAndSet("counter", "fresh", undefined)).ok).toBe(true);
    expect((await store.get("counter"))?.value).toBe("fresh");
  });

  it("accepts keys of letters, digits and _-/= joined by single dots", async () => {
    const store = DataStore.inMemory();
    for (const key of ["a", "A-z_0/9=", "team.app.stage/eu-west-1", "x".repeat(MAX_KEY_LENGTH)]) {
      await store.put(key, key);
      expect((await store.get(key))?.value).toBe(key);
    }
  });

  it.each([
    ["", "empty"],
    ["has space", "letters"],
    ["wild.*", "letters"],
    ["tail.>", "letters"],
    [".leading", "leading"],
    ["trailing.", "trailing"],
    ["double..dot", "empty token"],
    ["ümlaut", "letters"],
    ["x".repeat(MAX_KEY_LENGTH + 1), "longer than"],
  ])("refuses the key %j with InvalidKey", async (key, reason) => {
    const bucket = new MemoryKvBucket();
    const store = new DataStore(bucket);
    for (const attempt of [
      () => store.get(key),
      () => store.put(key, "v"),
      () => store.delete(key),
      () => store.compareAndSet(key, "v", undefined),
    ]) {
      const error = await attempt().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(InvalidKey);
      expect((error as InvalidKey).message).toContain(reason);
    }
    expect((await bucket.status()).entries).toBe(0);
  });

  it("refuses values over the size limit in UTF-8 bytes, not characters", async () => {
    const store = DataStore.inMemory({ maxValueBytes: 8 });
    await store.put("k", "12345678");
    // Three 3-byte characters: 9 bytes in 3 characters.
    await expect(store.put("k", "€€€")).rejects.toBeInstanceOf(ValueTooLarge);
    await expect(store.compareAndSet("k", "€€€", undefined)).rejects.toMatchObject({
      name: "ValueTooLarge",
      bytes: 9,
      limit: 8,
    });
    expect((await store.get("k"))?.value).toBe("12345678");
  });

  it("allows 64 KiB by default", async () => {
    const store = DataStore.inMemory();
    expect(store.maxValueBytes).toBe(DEFAULT_MAX_VALUE_BYTES);
    await store.put("big", "x".repeat(64 * 1024));
    await expect(store.put("big", "x".repeat(64 * 1024 + 1))).rejects.toBeInstanceOf(ValueTooLarge);
  });
});
