import { describe, expect, it } from "vitest";
import { ManualClock, realClock, sleep } from "../../../lib/clock/mod.ts";

describe("ManualClock", () => {
  it("fires due timers in time order, then in the order they were set, and none before their time", async () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.after(30, () => fired.push("c"));
    clock.after(10, () => fired.push("a"));
    clock.after(10, () => fired.push("b"));
    await clock.advance(9);
    expect(fired).toEqual([]);
    await clock.advance(21);
    expect(fired).toEqual(["a", "b", "c"]);
    expect(clock.now()).toBe(1030);
    expect(clock.pending).toBe(0);
  });

  it("shows each timer its own due time and fires the timers it sets within the same advance", async () => {
    const clock = new ManualClock(0);
    const seen: number[] = [];
    const tick = () => {
      seen.push(clock.now());
      clock.after(10, tick);
    };
    clock.after(10, tick);
    await clock.advance(35);
    expect(seen).toEqual([10, 20, 30]);
    expect(clock.now()).toBe(35);
  });

  it("lets the work a timer starts settle before the next one fires", async () => {
    const clock = new ManualClock(0);
    const order: string[] = [];
    clock.after(1, () => {
      void Promise.resolve()
        .then(() => Promise.resolve())
        .then(() => order.push("work of first"));
    });
    clock.after(2, () => order.push("second"));
    await clock.advance(2);
    expect(order).toEqual(["work of first", "second"]);
  });

  it("does not fire a cancelled timer", async () => {
    const clock = new ManualClock(0);
    let fired = false;
    const cancel = clock.after(5, () => {
      fired = true;
    });
    cancel();
    await clock.advance(10);
    expect(fired).toBe(false);
  });
});

describe("sleep", () => {
  it("resolves once the clock has moved on by its time", async () => {
    const clock = new ManualClock(0);
    let woke = false;
    const sleeping = sleep(clock, 50).then(() => {
      woke = true;
    });
    await clock.advance(49);
    expect(woke).toBe(false);
    await clock.advance(1);
    await sleeping;
    expect(woke).toBe(true);
  });

  it("rejects with the signal's reason and drops its timer when the signal aborts", async () => {
    const clock = new ManualClock(0);
    const stop = new AbortController();
    const sleeping = sleep(clock, 50, stop.signal);
    stop.abort(new Error("cancelled"));
    await expect(sleeping).rejects.toThrow("cancelled");
    expect(clock.pending).toBe(0);
    await expect(sleep(clock, 50, stop.signal)).rejects.toThrow("cancelled");
  });

  it("waits on the real clock by default", async () => {
    const started = performance.now();
    await sleep(realClock, 30);
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
    const stop = new AbortController();
    const sleeping = sleep(realClock, 10_000, stop.signal);
    stop.abort(new Error("stopped"));
    await expect(sleeping).rejects.toThrow("stopped");
  });
});
