// The short version of `npm run chaos` (issue 12): every scenario at its CI size, against real processes.
// A row passes when its books balance, it lost nothing beyond what a killed or cut process held in flight,
// duplicated nothing and noted no other problem.
import { describe, expect, it } from "vitest";
import { runScenario } from "../../chaos/run.ts";
import { SCENARIOS } from "../../chaos/scenarios.ts";

describe("the chaos suite, short", () => {
  for (const scenario of SCENARIOS) {
    it(scenario.name, async () => {
      const row = await runScenario(scenario, "short");
      expect(row.problems).toEqual([]);
      expect(row.sent, "the scenario sent nothing").toBeGreaterThan(0);
      expect(row.answered, "nothing was answered").toBeGreaterThan(0);
      expect(row.booksBalanced).toBe(true);
      expect(row.lost).toBeLessThanOrEqual(row.inFlightOfKilled);
      expect(row.duplicated).toBe(0);
      expect(row.peakRssMiB, "no process was measured").toBeGreaterThan(0);
    }, 60_000);
  }
});
