// `choria-edge gateway`: answers `--help` and an option mistake from the option list alone, then hands the
// arguments to functions/node.ts, which reads them again with the environment and the files they name.
// Loading the gateway (hono, the NATS client, the schemas) costs several times Node's own start-up.
import { GATEWAY_OPTIONS, gatewayUsage } from "../functions/gateway-options.ts";
import { commandArgs } from "./args.ts";

export async function runGateway(argv: string[]): Promise<number> {
  const args = commandArgs("gateway", gatewayUsage(), GATEWAY_OPTIONS, argv, process, { positionals: false });
  if (typeof args === "number") return args;
  const { runGateway: serve } = await import("../functions/node.ts");
  return serve(argv);
}
