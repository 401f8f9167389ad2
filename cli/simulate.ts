import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DEMO_PKI_MADE, envName, pkiDir, readNamedFile } from "../lib/config/mod.ts";
import { jsonLineLogger } from "../lib/log/mod.ts";
import {
  generateFleet,
  NodeHost,
  type NodeIdentity,
  type NodeService,
  parseFleet,
  serveNodes,
} from "../lib/node/mod.ts";
import { TrustStore } from "../lib/security/node.ts";
import type { NatsBus } from "../lib/transport/mod.ts";
import { natsConnectionChoice, natsOptionSpecs } from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
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

const ENV_PREFIX = "CHORIA_EDGE_SIMULATE_";

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

export async function runSimulate(argv: string[]): Promise<number> {
  const values = serviceArgs(HELP, OPTIONS(), argv);
  if (values === undefined) return 0;
  const nats = natsConnectionChoice((flag) => {
    const value = values[flag] ?? process.env[envName(ENV_PREFIX, flag)];
    return typeof value === "string" && value !== "" ? value : undefined;
  });
  if (!nats.ok) throw new Error(nats.error);
  const count = positiveInt("--nodes", values.nodes);
  const perConnection = positiveInt("--per-connection", values["per-connection"]);
  const offset = nonNegativeInt("--offset", values.offset);
  const log = jsonLineLogger((line) => process.stderr.write(line), { component: "simulate" });
  const trust = TrustStore.fromPem(
    await readNamedFile(values.ca, {
      what: "CA certificate",
      ...(values.ca === join(pkiDir(), "ca.pem") ? { made: DEMO_PKI_MADE, instead: "--ca" } : {}),
    }),
  );
  const fleet = values.fleet
    ? await readFleet(values.fleet)
    : generateFleet({
        count,
        collective: values.collective,
        seed: nonNegativeInt("--seed", values.seed),
        offset,
      });

  const services: { service: NodeService; bus: NatsBus }[] = [];
  for (let start = 0; start < fleet.length; start += perConnection) {
    const bus = await connectNats({
      servers: values.server,
      name: `choria-edge-simulate-${offset + start}`,
      auth: nats.auth,
      ...(nats.tls ? { tls: nats.tls } : {}),
      waitForServer: true,
      log,
    });
    const service = serveNodes(
      bus,
      new NodeHost({ fleet: fleet.slice(start, start + perConnection), trust }),
      log,
    );
    await bus.flush();
    services.push({ service, bus });
  }
  log("info", "simulated nodes ready", {
    nodes: fleet.length,
    collectives: [...new Set(fleet.map((n) => n.collective))],
    connections: services.length,
  });
  if (values["ready-file"]) await writeFile(values["ready-file"], "ready\n");

  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  for (const { service, bus } of services) {
    await service.stop();
    await bus.drain();
  }
  return 0;
}

async function readFleet(path: string): Promise<NodeIdentity[]> {
  const parsed = parseFleet(await readFile(path, "utf8"));
  if (!parsed.ok) throw new Error(`${path}: ${parsed.error}`);
  return parsed.fleet;
}

function positiveInt(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${flag} must be a whole number above 0, not ${text}`);
  return value;
}

function nonNegativeInt(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${flag} must be a whole number, not ${text}`);
  return value;
}
