// `choria-edge collector`: an async result collector (functions/result-collector.ts), loaded once the
// options are known good.
import { COLLECTOR_OPTIONS, collectorUsage } from "../lib/results/jobs/flags/mod.ts";
import { serviceCommand } from "./args.ts";

export const runCollector = serviceCommand(
  "collector",
  collectorUsage,
  COLLECTOR_OPTIONS,
  async () => (await import("../functions/result-collector.ts")).runCollector,
);
