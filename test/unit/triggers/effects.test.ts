import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../lib/clock/mod.ts";
import { DataStore, Locks } from "../../../lib/data/mod.ts";
import { applyJobEffects, jobDataActions } from "../../../lib/triggers/effects.ts";

describe("applyJobEffects", () => {
  it("makes the writes meant for the job's end state, then releases the job's locks", async () => {
    const data = DataStore.inMemory();
    await data.put("deploy/pending", "yes");
    const locks = new Locks(data);
    const lock = (await locks.acquire("deploy", { holder: "deploy/1", ttlMs: 60_000, timeoutMs: 0 }))!;
    await applyJobEffects(
      data,
      {
        locks: [{ name: "deploy", token: lock.token }],
        data: jobDataActions([
          { op: "put", key: "deploy/last-sha", value: "abc" },
          { op: "put", key: "deploy/last-good", value: "abc", whenState: ["complete"] },
          { op: "put", key: "deploy/last-bad", value: "abc", whenState: ["timed_out", "cancelled"] },
          { op: "delete", key: "deploy/pending" },
        ]),
      },
      "complete",
    );
    expect((await data.get("deploy/last-sha"))?.value).toBe("abc");
    expect((await data.get("deploy/last-good"))?.value).toBe("abc");
    expect(await data.get("deploy/last-bad")).toBeUndefined();
    expect(await data.get("deploy/pending")).toBeUndefined();
    expect(await locks.acquire("deploy", { holder: "next", ttlMs: 1000, timeoutMs: 0 })).toBeDefined();
  });

  it("leaves alone a lock that another holder took after the job's ran out, and can run twice", async () => {
    const data = DataStore.inMemory();
    const clock = new ManualClock();
    const locks = new Locks(data, { clock });
    const mine = (await locks.acquire("deploy", { holder: "old", ttlMs: 50, timeoutMs: 0 }))!;
    await clock.advance(50);
    const theirs = (await locks.acquire("deploy", { holder: "new", ttlMs: 60_000, timeoutMs: 0 }))!;
    const effects = { locks: [{ name: "deploy", token: mine.token }], data: [] };
    await applyJobEffects(data, effects, "timed_out");
    await applyJobEffects(data, effects, "timed_out");
    expect((await locks.inspect("deploy"))?.holder).toBe("new");
    expect(await theirs.release()).toBe(true);
  });
});
