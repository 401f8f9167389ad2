import { expect, it } from "vitest";
import { COLLECTOR_OPTIONS } from "../../../lib/results/jobs/flags/mod.ts";
import { DEFAULT_BUCKET } from "../../../lib/results/jobs/mod.ts";

// The collector's option list spells the bucket out so that `collector --help` need not load lib/results/jobs.
it("collector's --bucket help names the bucket the collector uses by default", () => {
  expect(COLLECTOR_OPTIONS.find((o) => o.flag === "bucket")?.help).toBe(
    `KV bucket of jobs (default ${DEFAULT_BUCKET})`,
  );
});
