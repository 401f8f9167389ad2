// `choria-edge simulate`: its usage and options only, so that `simulate --help` loads neither the node
// host nor the NATS client; simulate-run.ts serves the nodes.
import { join } from "node:path";
import { type OptionValues, pkiDir } from "../lib/config/mod.ts";
import { natsOptionSpecs } from "../lib/transport/flags/mod.ts";
import { serviceArgs } from "./args.ts";

const HELP = `usage: choria-edge simulate [options]

Hosts many simulated Choria member nodes in one process. Each node has its own identity, facts,
classes and agents (rpcutil, discovery, demo), verifies every request's signature against the CA,
applies filters and replies on its own.

  --nodes N            how many nodes (default 100)
  --fleet FILE         read the nodes from a JSON file instead (array of {identity, collective,
                       facts, classes, agents}); --nodes, --seed and --offset are then ignored
  --collective NAME    member collective (default mcollective)
  --server URL         NATS server of the collective (default nats://127.0.0.1:4222)
  --ca FILE            CA bundle requests must chain to (default <state>/pki/ca.pem)
  --seed N             seed for the generated facts (default 1)
  --offset N           index of the first node, to split one fleet over processes (default 0)
  --per-connection N   nodes sharing one NATS connection (default 1000)
  --ready-file FILE    write "ready" to FILE once every node is subscribed (for scripts)

NATS authentication and TLS (each also CHORIA_EDGE_SIMULATE_<FLAG>, e.g. CHORIA_EDGE_SIMULATE_NKEY_SEED;
put secrets there rather than on the command line):

  --user NAME, --password P, --token T, --nkey-seed SU…, --credentials FILE
  --tls-ca FILE        CA bundle to verify the server (tls:// URLs)
  --tls-cert FILE      client certificate, --tls-key FILE its key`;

// The defaults are read when the command runs, as they depend on the environment.
const OPTIONS = () =>
  [
    { flag: "nodes", kind: "string", default: "100" },
    { flag: "fleet", kind: "string" },
    { flag: "collective", kind: "string", default: "mcollective" },
    {
      flag: "server",
      kind: "string",
      default: process.env.CHORIA_EDGE_COLLECTIVE_URL ?? "nats://127.0.0.1:4222",
    },
    { flag: "ca", kind: "string", default: join(pkiDir(), "ca.pem") },
    { flag: "seed", kind: "string", default: "1" },
    { flag: "offset", kind: "string", default: "0" },
    { flag: "per-connection", kind: "string", default: "1000" },
    { flag: "ready-file", kind: "string" },
    ...natsOptionSpecs(),
  ] as const;

export type SimulateValues = OptionValues<ReturnType<typeof OPTIONS>>;

export async function runSimulate(argv: string[]): Promise<number> {
  const values = serviceArgs(HELP, OPTIONS(), argv);
  if (values === undefined) return 0;
  const { hostNodes } = await import("./simulate-run.ts");
  return hostNodes(values);
}
