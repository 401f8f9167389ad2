import { pkiDir } from "../lib/config/mod.ts";
import { serviceArgs } from "./args.ts";

const HELP = `usage: choria-edge keys [--dir DIR] [--node NAME ...] [--client NAME] [--gateway NAME]

Creates (or reuses) a demo CA and certificates for the gateway, a client and member nodes.
Keys are written with mode 0600. For demos and tests only: production fleets use their own CA.`;

// The default folder is read when the command runs, as it depends on CHORIA_EDGE_HOME.
const OPTIONS = () =>
  [
    { flag: "dir", kind: "string", default: pkiDir() },
    { flag: "node", kind: "multiple" },
    { flag: "client", kind: "string" },
    { flag: "gateway", kind: "string" },
  ] as const;

export async function runKeys(argv: string[]): Promise<number> {
  const values = serviceArgs(HELP, OPTIONS(), argv);
  if (values === undefined) return 0;
  // After the arguments: `keys --help` need not load the x509 library.
  const { ensureDemoPki } = await import("../infra/pki.ts");
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
