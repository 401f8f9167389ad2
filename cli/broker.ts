// `choria-edge broker`: a federation broker worker (functions/broker.ts), loaded once the options are
// known good.
import { BROKER_OPTIONS, brokerUsage } from "../lib/federation/flags/mod.ts";
import { serviceCommand } from "./args.ts";

export const runBroker = serviceCommand(
  "broker",
  brokerUsage,
  BROKER_OPTIONS,
  async () => (await import("../functions/broker.ts")).runBroker,
);
