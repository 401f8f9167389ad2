import { parseArgs } from "node:util";
import { ensureDemoPki } from "../infra/pki.ts";
import { pkiDir } from "../lib/config/mod.ts";

const HELP = `usage: choria-edge keys [--dir DIR] [--node NAME ...] [--client NAME] [--gateway NAME]

Creates (or reuses) a demo CA and certificates for the gateway, a client and member nodes.
Keys are written with mode 0600. For demos and tests only: production fleets use their own CA.`;

export async function runKeys(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: "string", default: pkiDir() },
      node: { type: "string", multiple: true },
      client: { type: "string" },
      gateway: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const pki = await ensureDemoPki(values.dir, {
    nodes: values.node,
    client: values.client,
    gateway: values.gateway,
  });
  for (const files of [pki.ca, pki.gateway, pki.client, ...pki.nodes]) {
    console.log(`${files.certname.padEnd(34)} ${files.certPath}`);
  }
  return 0;
}
