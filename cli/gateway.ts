// `choria-edge gateway`: the gateway on Node (functions/node.ts), loaded once the options are known good.
import { GATEWAY_OPTIONS, gatewayUsage } from "../functions/gateway-options.ts";
import { serviceCommand } from "./args.ts";

export const runGateway = serviceCommand(
  "gateway",
  gatewayUsage,
  GATEWAY_OPTIONS,
  async () => (await import("../functions/node.ts")).runGateway,
);
