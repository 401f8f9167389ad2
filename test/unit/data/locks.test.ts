import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../lib/clock/mod.ts";
import { DataStore, InvalidKey, type Lock, LockLost, Locks, releaseLock } from "../../../lib/data/mod.ts";
import { MemoryKvBucket } from "../../../lib/kv/memory.ts";

function setup() {
  const bucket = new MemoryKvBucket();
  const store = new DataStore(bucket);
  const clock = new ManualClock();
  return { bucket, store, clock, locks: new Locks(store, { clock }) };
}

async function mustAcquire(locks: Locks, name: string, holder: string, ttlMs: number): Promise<Lock> {
  const lock = await locks.acquire(name, { holder, ttlMs, timeoutMs: 0 });
  if (lock === undefined) throw new Error(`${holder} did not get ${name}`);
  return lock;
}

/** What `pending` comes to, checked to come exactly `ms` from now on `clock` and not a millisecond sooner. */
async function answeredAfter<T>(clock: ManualClock, pending: Promise<T>, ms: number): Promise<T> {
  let answered = false;
  const settle = () => {
    answered = true;
  };
  pending.then(settle, settle);
  await clock.advance(ms - 1);
  expect(answered).toBe(false);
  await clock.advance(1);
  expect(answered).toBe(true);
  return pending;
}

/** A memory bucket whose lock updates can be made to fail, as a connection to a stopped server would. */
class FlakyBucket extends MemoryKvBucket {
  failing = false;
  /** Stores the next update and then fails it, as when the server's answer is lost on the way back. */
  loseNextAnswer = false;

  override async update(key: string, value: Uint8Array | string, revision: number) {
    if (this.failing) throw new Error("connection lost");
    const written = await super.update(key, value, revision);
    if (this.loseNextAnswer) {
      this.loseNextAnswer = false;
      throw new Error("timeout");
    }
    return written;
  }
}

describe("Locks", () => {
  it("takes a free lock and shows its holder and expiry, never its token", async () => {
    const { clock, locks } = setup();
    const lock = await mustAcquire(locks, "deploy.web", "gateway-1", 5000);
    expect(lock.holder).toBe("gateway-1");
    expect(lock.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(lock.expiresAt).toBe(clock.now() + 5000);
    const state = await locks.inspect("deploy.web");
    expect(state).toEqual({
      name: "deploy.web",
      holder: "gateway-1",
      acquiredAt: lock.acquiredAt,
      expiresAt: lock.expiresAt,
      renewals: 0,
      expired: false,
      revision: lock.revision,
    });
    expect(JSON.stringify(state)).not.toContain(lock.token);
    expect(await locks.inspect("other")).toBeUndefined();
  });

  it("keeps lock and data keys apart in one bucket", async () => {
    const { bucket, store, locks } = setup();
    await store.put("deploy", "data");
    await mustAcquire(locks, "deploy", "g", 5000);
    expect((await store.get("deploy"))?.value).toBe("data");
    expect(await bucket.get("lock.deploy")).toBeDefined();
  });

  it("refuses a held lock, waits until the timeout, and gets it once the holder releases", async () => {
    const { clock, locks } = setup();
    const first = await mustAcquire(locks, "job", "a", 5000);
    expect(await locks.acquire("job", { holder: "b", ttlMs: 5000, timeoutMs: 0 })).toBeUndefined();

    const timingOut = locks.acquire("job", { holder: "b", ttlMs: 5000, timeoutMs: 150 });
    expect(await answeredAfter(clock, timingOut, 150)).toBeUndefined();

    const waiting = locks.acquire("job", { holder: "b", ttlMs: 5000, timeoutMs: 5000 });
    await clock.advance(50);
    expect(await first.release()).toBe(true);
    // Waiters poll at most this far apart.
    await clock.advance(200);
    const second = await waiting;
    expect(second?.holder).toBe("b");
    expect((await locks.inspect("job"))?.holder).toBe("b");
  });

  it("lets exactly one of many simultaneous contenders win, on a free and on an expired lock", async () => {
    const { clock, locks } = setup();
    const race = () =>
      Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          locks.acquire("race", { holder: `c${i}`, ttlMs: 200, timeoutMs: 0 }),
        ),
      );
    const free = await race();
    expect(free.filter(Boolean)).toHaveLength(1);
    await clock.advance(200);
    const expired = await race();
    expect(expired.filter(Boolean)).toHaveLength(1);
    expect(expired.find(Boolean)?.token).not.toBe(free.find(Boolean)?.token);
  });

  it("takes over an expired lock only after its expiry; the old holder then can neither renew nor release", async () => {
    const { clock, locks } = setup();
    const old = await mustAcquire(locks, "job", "old", 300);
    const taking = locks.acquire("job", { holder: "next", ttlMs: 5000, timeoutMs: 3000 });
    const next = await answeredAfter(clock, taking, 300);
    expect(next?.holder).toBe("next");
    expect(next!.acquiredAt).toBe(old.expiresAt);

    const lost = await old.renew().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(lost).toBeInstanceOf(LockLost);
    expect(lost).toMatchObject({ lock: "job", reason: "taken" });
    expect(await old.release()).toBe(false);
    expect((await locks.inspect("job"))?.holder).toBe("next");
  });

  it("shows an expired lock as expired until someone takes it", async () => {
    const { clock, locks } = setup();
    await mustAcquire(locks, "job", "old", 100);
    await clock.advance(99);
    expect(await locks.inspect("job")).toMatchObject({ holder: "old", expired: false });
    await clock.advance(1);
    expect(await locks.inspect("job")).toMatchObject({ holder: "old", expired: true });
  });

  it("renews: a later expiry, a new revision, one more renewal", async () => {
    const { clock, locks } = setup();
    const lock = await mustAcquire(locks, "job", "a", 400);
    const { expiresAt, revision } = lock;
    await clock.advance(20);
    await lock.renew();
    expect(lock.expiresAt).toBe(expiresAt + 20);
    expect(lock.revision).toBeGreaterThan(revision);
    expect(lock.renewals).toBe(1);
    expect(await locks.inspect("job")).toMatchObject({ renewals: 1, expiresAt: lock.expiresAt });
  });

  it("renews once for longer when the holder hands the lock to longer work", async () => {
    const { clock, locks } = setup();
    const lock = await mustAcquire(locks, "job", "gateway", 400);
    await lock.renew({ ttlMs: 60_000 });
    expect(lock.expiresAt).toBe(clock.now() + 60_000);
    await lock.renew();
    expect(lock.expiresAt).toBe(clock.now() + 400);
  });

  it("releases only with the holder's token, and from anywhere with it", async () => {
    const { store, locks } = setup();
    const lock = await mustAcquire(locks, "job", "gateway", 5000);
    expect(await releaseLock(store, "job", "not-the-token")).toBe(false);
    expect((await locks.inspect("job"))?.holder).toBe("gateway");

    // The collector, a process that never saw the Lock object, ends the job.
    expect(await releaseLock(store, "job", lock.token)).toBe(true);
    expect(await locks.inspect("job")).toBeUndefined();
    expect(await releaseLock(store, "job", lock.token)).toBe(false);
    await expect(lock.renew()).rejects.toMatchObject({ name: "LockLost", reason: "released" });
    expect(await lock.release()).toBe(false);
    expect(await releaseLock(store, "never-taken", lock.token)).toBe(false);
  });

  it("does not let a stale holder's release free the lock that someone else took over", async () => {
    const { store, clock, locks } = setup();
    const old = await mustAcquire(locks, "job", "old", 100);
    await clock.advance(100);
    const next = await mustAcquire(locks, "job", "next", 5000);
    expect(await old.release()).toBe(false);
    expect(await releaseLock(store, "job", old.token)).toBe(false);
    expect(await locks.inspect("job")).toMatchObject({ holder: "next", revision: next.revision });
  });

  it("keeps a renewed lock past several TTLs", async () => {
    const { clock, locks } = setup();
    const lock = await mustAcquire(locks, "job", "a", 300);
    const alive = lock.keepAlive();
    const contender = locks.acquire("job", { holder: "b", ttlMs: 300, timeoutMs: 1200 });
    await clock.advance(1200);
    expect(await contender).toBeUndefined();
    expect(alive.lost.aborted).toBe(false);
    // One renewal every third of the TTL.
    expect(lock.renewals).toBe(12);
    expect((await locks.inspect("job"))?.holder).toBe("a");
    expect(await lock.release()).toBe(true);
    // release() stopped the renewals: no timer is left, and the tombstone stays.
    expect(clock.pending).toBe(0);
    await clock.advance(300);
    expect(await locks.inspect("job")).toBeUndefined();
  });

  it("reports through the callback and the signal when the lock is released elsewhere", async () => {
    const { store, clock, locks } = setup();
    const lock = await mustAcquire(locks, "job", "a", 300);
    const reported: LockLost[] = [];
    const alive = lock.keepAlive({ onLost: (err) => reported.push(err) });
    await releaseLock(store, "job", lock.token);
    await clock.advance(100);
    expect(reported.map((e) => e.reason)).toEqual(["released"]);
    expect(alive.lost.aborted).toBe(true);
    expect(alive.lost.reason).toBe(reported[0]);
  });

  it("reports a takeover by a contender whose clock runs ahead", async () => {
    const { store, clock, locks } = setup();
    const lock = await mustAcquire(locks, "job", "a", 600);
    const alive = lock.keepAlive();
    // A clock ten seconds ahead sees the lock as long expired: the skew the README warns about.
    const ahead = new Locks(store, { clock: new ManualClock(clock.now() + 10_000) });
    expect(await ahead.acquire("job", { holder: "b", ttlMs: 60_000, timeoutMs: 0 })).toBeDefined();
    await clock.advance(200);
    expect(alive.lost.reason).toMatchObject({ name: "LockLost", reason: "taken" });
    expect((await locks.inspect("job"))?.holder).toBe("b");
  });

  // The one test on the real clock: Node's timers against Date.now, as in production.
  it("gives a lock up at its expiry when renewals cannot reach the store, and frees it once they can", async () => {
    const bucket = new FlakyBucket();
    const store = new DataStore(bucket);
    const locks = new Locks(store);
    const lock = await mustAcquire(locks, "job", "a", 150);
    const alive = lock.keepAlive();
    bucket.failing = true;
    await new Promise((resolve) => alive.lost.addEventListener("abort", resolve, { once: true }));
    expect(Date.now()).toBeGreaterThanOrEqual(lock.expiresAt);
    expect(alive.lost.reason).toMatchObject({ reason: "expired" });
    await expect(lock.renew()).rejects.toMatchObject({ reason: "expired" });
    bucket.failing = false;
    // Nobody took it: it is still the old record, expired, and anyone may take it.
    expect(await locks.inspect("job")).toMatchObject({ holder: "a", expired: true });
    expect((await locks.acquire("job", { holder: "b", ttlMs: 150, timeoutMs: 0 }))?.holder).toBe("b");
  });

  it("keeps the lock when a renewal was stored but its answer was lost", async () => {
    const bucket = new FlakyBucket();
    const locks = new Locks(new DataStore(bucket));
    const lock = await mustAcquire(locks, "job", "a", 5000);
    bucket.loseNextAnswer = true;
    await expect(lock.renew()).rejects.toThrow("timeout");
    // Our revision is stale now, but the entry still carries our token.
    await lock.renew();
    expect(await locks.inspect("job")).toMatchObject({ holder: "a", renewals: 2, revision: lock.revision });
    expect(await lock.release()).toBe(true);
  });

  it("reports a lock whose key disappeared as gone", async () => {
    const { bucket, locks } = setup();
    const lock = await mustAcquire(locks, "job", "a", 5000);
    await bucket.purge("lock.job");
    await expect(lock.renew()).rejects.toMatchObject({ reason: "gone" });
  });

  it("takes over a value that is not a lock record", async () => {
    const { bucket, locks } = setup();
    await bucket.put("lock.job", "not json");
    expect(await locks.inspect("job")).toBeUndefined();
    expect((await locks.acquire("job", { holder: "a", ttlMs: 300, timeoutMs: 0 }))?.holder).toBe("a");
  });

  it("stops waiting when the signal aborts", async () => {
    const { clock, locks } = setup();
    await mustAcquire(locks, "job", "a", 5000);
    const controller = new AbortController();
    const waiting = locks.acquire("job", {
      holder: "b",
      ttlMs: 300,
      timeoutMs: 5000,
      signal: controller.signal,
    });
    await clock.advance(50);
    controller.abort(new Error("job cancelled"));
    await expect(waiting).rejects.toThrow("job cancelled");
    expect(clock.pending).toBe(0);
  });

  it("stops renewing when keepAlive's signal aborts or it is stopped", async () => {
    const { clock, locks } = setup();
    const lock = await mustAcquire(locks, "job", "a", 1000);
    const controller = new AbortController();
    lock.keepAlive({ everyMs: 50, signal: controller.signal });
    await clock.advance(120);
    controller.abort();
    expect(lock.renewals).toBe(2);
    await clock.advance(120);
    expect(lock.renewals).toBe(2);
    const alive = lock.keepAlive({ everyMs: 50 });
    await clock.advance(120);
    alive.stop();
    expect(lock.renewals).toBe(4);
    await clock.advance(120);
    expect(lock.renewals).toBe(4);
    expect(alive.lost.aborted).toBe(false);
  });

  it("reports at once a keepAlive started on a lock already past its expiry", async () => {
    const { clock, locks } = setup();
    const lock = await mustAcquire(locks, "job", "a", 100);
    await clock.advance(150);
    const alive = lock.keepAlive();
    await clock.advance(0);
    expect(alive.lost.reason).toMatchObject({ reason: "expired" });
  });

  it("refuses bad names and durations", async () => {
    const { locks } = setup();
    await expect(
      locks.acquire("no spaces", { holder: "a", ttlMs: 300, timeoutMs: 0 }),
    ).rejects.toBeInstanceOf(InvalidKey);
    await expect(locks.inspect("a..b")).rejects.toBeInstanceOf(InvalidKey);
    await expect(locks.acquire("job", { holder: "a", ttlMs: 0, timeoutMs: 0 })).rejects.toBeInstanceOf(
      RangeError,
    );
    await expect(locks.acquire("job", { holder: "a", ttlMs: 300, timeoutMs: -1 })).rejects.toBeInstanceOf(
      RangeError,
    );
    await expect(locks.acquire("job", { holder: "", ttlMs: 300, timeoutMs: 0 })).rejects.toBeInstanceOf(
      RangeError,
    );
  });
});
