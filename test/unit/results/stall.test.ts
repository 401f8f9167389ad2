import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../lib/clock/mod.ts";
import { StallWatch } from "../../../lib/results/collect-replies.ts";
import { discoveryOutcome } from "../../../lib/results/rpc.ts";

/** A watch on a ManualClock whose I/O turn the test controls: `io` runs during the turn, as the socket would. */
function watch(idleMs: number, options: { busy?: () => boolean; io?: () => void } = {}) {
  const clock = new ManualClock();
  const stalls: number[] = [];
  const stall = new StallWatch(
    clock,
    idleMs,
    () => stalls.push(clock.now()),
    options.busy,
    async () => options.io?.(),
  );
  return { clock, stall, stalls };
}

describe("StallWatch: the discovery stall rule", () => {
  it("does nothing before the first message, however long the quiet", async () => {
    const { clock, stalls } = watch(300);
    await clock.advance(10_000);
    expect(stalls).toEqual([]);
  });

  it("fires once, idleMs after the last of a steady stream of messages", async () => {
    const { clock, stall, stalls } = watch(300);
    const start = clock.now();
    for (let i = 0; i < 10; i++) {
      stall.arrived();
      await clock.advance(250);
    }
    expect(stalls).toEqual([]);
    await clock.advance(50);
    expect(stalls).toEqual([start + 9 * 250 + 300]);
    await clock.advance(5_000);
    expect(stalls).toHaveLength(1);
  });

  it("waits while replies already received are still being checked", async () => {
    let checking = true;
    const { clock, stall, stalls } = watch(300, { busy: () => checking });
    stall.arrived();
    await clock.advance(900);
    expect(stalls).toEqual([]);
    checking = false;
    await clock.advance(300);
    expect(stalls).toHaveLength(1);
  });

  it("does not fire when messages that waited in the socket arrive in the turn before it decides", async () => {
    // The process was stalled past the deadline: its timer is due before it reads what the fleet sent.
    let backlog = 3;
    const { clock, stall, stalls } = watch(300, {
      io: () => {
        if (backlog-- > 0) stall.arrived();
      },
    });
    stall.arrived();
    await clock.advance(300);
    expect(stalls).toEqual([]);
    await clock.advance(300);
    await clock.advance(300);
    expect(stalls).toEqual([]);
    await clock.advance(300);
    expect(stalls).toHaveLength(1);
  });

  it("never fires once stopped", async () => {
    const { clock, stall, stalls } = watch(300);
    stall.arrived();
    stall.stop();
    stall.arrived();
    await clock.advance(1_000);
    expect(stalls).toEqual([]);
  });
});

describe("discoveryOutcome", () => {
  it("is complete only when the window ran out with the fleet quiet or silent", () => {
    expect(discoveryOutcome({ done: "timeout", quietMs: null }, 0, 300)).toEqual({
      complete: true,
      found: 0,
      reason: "timeout",
    });
    expect(discoveryOutcome({ done: "timeout", quietMs: 400 }, 12, 300).complete).toBe(true);
    // Replies were still coming when the window closed.
    expect(discoveryOutcome({ done: "timeout", quietMs: 20 }, 6524, 300)).toEqual({
      complete: false,
      found: 6524,
      reason: "timeout",
    });
    expect(discoveryOutcome({ done: "idle", quietMs: 300 }, 10_000, 300)).toEqual({
      complete: false,
      found: 10_000,
      reason: "stall",
    });
    expect(discoveryOutcome({ done: "cancelled", quietMs: 5 }, 3, 300).reason).toBe("cancelled");
  });
});
