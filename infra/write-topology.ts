// `npx tsx infra/write-topology.ts <dir> [caller ids…]`: writes the production-shaped topology into <dir>.
// A script of its own, not a main block in topology.ts: the bundled CLI imports topology.ts, and in a
// bundle every module's import.meta.url is the bundle's, so a main block there would run on every call.
import { generateTopology } from "./topology.ts";

const dir = process.argv[2] ?? ".choria-edge/topology";
const topology = await generateTopology({
  dir,
  gatewayCallerIds: process.argv.slice(3).length > 0 ? process.argv.slice(3) : ["choria=demo.mcollective"],
});
for (const server of topology.servers)
  console.log(
    `${server.name.padEnd(8)} ${server.url}${server.wsUrl ? `  ${server.wsUrl}` : ""}  ${server.configFile}`,
  );
