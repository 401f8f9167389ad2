// `choria-edge simulate` once its arguments are read: the nodes, their NATS connections, until a signal.
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
import { nodeCodec } from "../lib/node/node.ts";
import { TrustStore } from "../lib/security/node.ts";
import type { NatsBus } from "../lib/transport/mod.ts";
import { natsConnectionChoice } from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import type { SimulateValues } from "./simulate.ts";

const ENV_PREFIX = "CHORIA_EDGE_SIMULATE_";

/** Serves the fleet until SIGINT or SIGTERM, then stops every node and drains its connection. */
export async function hostNodes(values: SimulateValues): Promise<number> {
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
      new NodeHost({
        fleet: fleet.slice(start, start + perConnection),
        trust,
        codec: nodeCodec,
      }),
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
