import { describe, expect, it } from "vitest";
import { KvUnavailable } from "../../../lib/kv/mod.ts";
import { OutageGate } from "../../../lib/transport/outage-gate.ts";

/** A call that settles when the test says so. */
function pending<T>() {
  let settle: { resolve: (value: T) => void; reject: (err: unknown) => void } | undefined;
  const promise = new Promise<T>((resolve, reject) => {
    settle = { resolve, reject };
  });
  return { promise, ...(settle as NonNullable<typeof settle>) };
}

const timeout = () => Object.assign(new Error("TIMEOUT"), { name: "TimeoutError" });
const asUnavailable = (err: unknown) =>
  err instanceof Error && err.name === "TimeoutError" ? new KvUnavailable("no answer", { cause: err }) : err;

describe("OutageGate", () => {
  it("passes calls through while the store answers, and their own errors unchanged", async () => {
    const gate = new OutageGate("kv bucket jobs");
    expect(await gate.run(async () => 1, asUnavailable)).toBe(1);
    const wrong = new Error("bad key");
    await expect(gate.run(() => Promise.reject(wrong), asUnavailable)).rejects.toBe(wrong);
    expect(await gate.run(async () => 2, asUnavailable)).toBe(2);
  });

  it("after a timeout lets one call find out, refuses the others at once, and opens on its success", async () => {
    const gate = new OutageGate("kv bucket jobs");
    await expect(gate.run(() => Promise.reject(timeout()), asUnavailable)).rejects.toBeInstanceOf(
      KvUnavailable,
    );

    const probe = pending<string>();
    let probed = 0;
    const probing = gate.run(() => {
      probed++;
      return probe.promise;
    }, asUnavailable);
    let others = 0;
    const refused = gate.run(async () => {
      others++;
      return "unreached";
    }, asUnavailable);
    await expect(refused).rejects.toThrow(/kv bucket jobs did not answer a moment ago \(no answer\)/);
    expect(others).toBe(0);
    expect(probed).toBe(1);

    probe.resolve("back");
    expect(await probing).toBe("back");
    expect(await gate.run(async () => "open", asUnavailable)).toBe("open");
  });

  it("stays shut while the probes time out, one probe at a time", async () => {
    const gate = new OutageGate("kv bucket jobs");
    await expect(gate.run(() => Promise.reject(timeout()), asUnavailable)).rejects.toBeInstanceOf(
      KvUnavailable,
    );
    for (let round = 0; round < 3; round++) {
      const probe = pending<string>();
      const probing = gate.run(() => probe.promise, asUnavailable);
      await expect(gate.run(async () => "unreached", asUnavailable)).rejects.toThrow(/moment ago/);
      probe.reject(timeout());
      await expect(probing).rejects.toBeInstanceOf(KvUnavailable);
    }
  });

  it("is not shut by a timeout of a call that was out before a later success", async () => {
    const gate = new OutageGate("kv bucket jobs");
    const early = pending<string>();
    const earlyCall = gate.run(() => early.promise, asUnavailable);
    expect(await gate.run(async () => "fresh", asUnavailable)).toBe("fresh");
    early.reject(timeout());
    await expect(earlyCall).rejects.toBeInstanceOf(KvUnavailable);

    const first = pending<string>();
    const firstCall = gate.run(() => first.promise, asUnavailable);
    // Not refused: the gate is open, so this goes through beside the first.
    expect(await gate.run(async () => "second", asUnavailable)).toBe("second");
    first.resolve("first");
    expect(await firstCall).toBe("first");
  });
});
