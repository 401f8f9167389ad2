// `choria-edge stack --topology ha`: the local stack on the production-shaped topology of infra/topology.ts
// (a 3-server federation cluster with JetStream R3 and a 3-server member cluster, TLS everywhere, one nkey
// user with allow-lists per role). Each service is the same command as in the single stack, connected as
// its role: its nkey seed in the environment (never on a command line), its TLS client certificate, and
// its own inbox prefix where the servers give it one.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { KeyRegistry } from "../lib/security/http/mod.ts";
import { parseTriggerFile } from "../lib/triggers/node.ts";
import { type DemoCaller, ensureDemoCaller } from "./demo-caller.ts";
import { type DemoTriggers, ensureDemoTriggers } from "./demo-triggers.ts";
import { DEMO_RPC_CLIENT } from "./pki.ts";
import {
  type BrokerCluster,
  COLLECTIVE,
  type FederationClients,
  launchBrokers,
  launchGatewayAndCollector,
  launchSimulate,
  launchStack,
  type RunningStack,
  type StackOptions,
  type StackRun,
} from "./stack.ts";
import {
  generateTopology,
  loadTopology,
  type RoleCredentials,
  startTopology,
  type Topology,
} from "./topology.ts";

/** Brokers per member cluster: two, so that one may fail. */
const BROKERS = 2;
/** JetStream replicas of the jobs, data and replay buckets: one per federation server. */
const REPLICAS = "3";

export function startHaStack(given: StackOptions): Promise<RunningStack> {
  return launchStack(given, async (run, natsServer) => {
    const { options, say } = run;
    say("choria-edge local stack, HA topology (the first run also makes its CA, certificates and nkeys)…");
    const caller = await ensureDemoCaller(options.stateDir, options.cluster, COLLECTIVE);
    const triggers = await ensureDemoTriggers(options.stateDir, options.cluster, COLLECTIVE);
    const topology = await ensureTopology(run, caller, triggers);
    const servers = await startTopology(topology, { binary: natsServer.path, ownProcessGroup: true });
    run.afterChildren.push(() => servers.stop());
    say(`  nats-server       ${natsServer.version}  (${natsServer.path}, from ${natsServer.from})`);
    say(`  ${topology.servers.length} NATS servers ready in ${servers.startupMs} ms  (${topology.dir})`);
    const member = topology.members[0];
    if (member === undefined) throw new Error(`${topology.dir} has no member cluster`);
    const gatewayRole = topology.roles.gateway;
    return {
      pki: topology.choria,
      federation: { url: topology.federation.urls.join(","), wsUrl: topology.federation.wsUrls[0] },
      collective: { url: member.urls.join(",") },
      ha: {
        dir: topology.dir,
        caFile: topology.caFile,
        federationUrls: topology.federation.urls,
        collectiveUrls: member.urls,
        gateway: {
          seedFile: gatewayRole.seedFile,
          certFile: gatewayRole.certFile,
          keyFile: gatewayRole.keyFile,
          inboxPrefix: gatewayRole.inboxPrefix ?? "_INBOX",
        },
      },
      brokerMetrics: await launchBrokers(run, haBrokers(topology)),
      nodesReady: await launchSimulate(run, haSimulate(topology, member)),
      gateway: await launchGatewayAndCollector(
        run,
        haFederationClients(topology),
        topology.choria,
        caller,
        triggers,
      ),
      caller,
      triggers,
    };
  });
}

/**
 * The topology in `<state>/topology`, made once and reused: made again only when it does not let the
 * gateway read the replies of the demo caller and the triggers, or one of its ports is taken. Its
 * JetStream stores are emptied, as every stack run begins with empty buckets.
 */
async function ensureTopology(run: StackRun, caller: DemoCaller, triggers: DemoTriggers): Promise<Topology> {
  const dir = join(run.options.stateDir, "topology");
  const registry = await KeyRegistry.fromConfig(JSON.parse(await readFile(caller.keysPath, "utf8")));
  const callerId = registry.get(caller.keyId)?.callerId;
  if (callerId === undefined) throw new Error(`${caller.keysPath} has no key "${caller.keyId}"`);
  // A trigger's job runs under its own caller id, whose replies the gateway must be allowed to read too.
  const parsed = parseTriggerFile(await readFile(triggers.triggersPath, "utf8"), {
    filename: triggers.triggersPath,
  });
  if (!parsed.ok) throw new Error(parsed.message);
  // `trace` logs in as the gateway role and signs as the demo RPC client, whose replies it must read too.
  const callerIds = [callerId, ...parsed.triggers.all().map((t) => t.callerId), `choria=${DEMO_RPC_CLIENT}`];
  const members = [{ cluster: run.options.cluster, collective: COLLECTIVE }];
  const reused = await loadTopology(dir, callerIds);
  if (reused?.members[0]?.cluster !== run.options.cluster) {
    await rm(dir, { recursive: true, force: true });
    return generateTopology({ dir, members, gatewayCallerIds: callerIds });
  }
  await Promise.all(
    reused.servers.map((s) => rm(join(s.dir, "jetstream"), { recursive: true, force: true })),
  );
  return reused;
}

/** Flags naming a role's TLS client certificate and the CA, under a flag prefix. */
function tlsFlags(topology: Topology, role: RoleCredentials, prefix = ""): string[] {
  return [
    `--${prefix}tls-ca`,
    topology.caFile,
    `--${prefix}tls-cert`,
    role.certFile,
    `--${prefix}tls-key`,
    role.keyFile,
  ];
}

/** Two brokers per member cluster, each side connected as that cluster's broker role. */
function haBrokers(topology: Topology): BrokerCluster[] {
  return topology.members.map((member) => {
    const role = topology.roles.brokers[member.cluster];
    if (role === undefined) throw new Error(`${topology.dir} has no broker role for ${member.cluster}`);
    return {
      cluster: member.cluster,
      collective: member.collective,
      count: BROKERS,
      federationServers: topology.federation.urls.join(","),
      collectiveServers: member.urls.join(","),
      args: [...tlsFlags(topology, role, "federation-"), ...tlsFlags(topology, role, "collective-")],
      env: {
        CHORIA_EDGE_BROKER_FEDERATION_NKEY_SEED: role.seed,
        CHORIA_EDGE_BROKER_COLLECTIVE_NKEY_SEED: role.seed,
      },
    };
  });
}

/** The simulated nodes on the first member cluster, as its nodes role. */
function haSimulate(topology: Topology, member: Topology["members"][number]) {
  const role = topology.roles.nodes[member.collective];
  if (role === undefined) throw new Error(`${topology.dir} has no nodes role for ${member.collective}`);
  return {
    // One URL: the servers tell a client the others (connect_urls), for reconnects.
    server: member.urls[0] ?? "",
    ca: topology.choria.ca.certPath,
    args: tlsFlags(topology, role),
    env: { CHORIA_EDGE_SIMULATE_NKEY_SEED: role.seed },
  };
}

/** How the gateway and the collector connect as their roles, with their inbox prefixes and R3 buckets. */
function haFederationClients(topology: Topology): FederationClients {
  const { gateway, collector } = topology.roles;
  return {
    servers: topology.federation.urls.join(","),
    gateway: {
      args: [
        ...tlsFlags(topology, gateway, "nats-"),
        "--nats-inbox-prefix",
        gateway.inboxPrefix ?? "_INBOX",
        "--replicas",
        REPLICAS,
      ],
      env: { CHORIA_EDGE_GATEWAY_NATS_NKEY_SEED: gateway.seed },
    },
    collector: {
      args: [
        ...tlsFlags(topology, collector),
        "--inbox-prefix",
        collector.inboxPrefix ?? "_INBOX",
        "--replicas",
        REPLICAS,
      ],
      env: { CHORIA_EDGE_COLLECTOR_NKEY_SEED: collector.seed },
    },
  };
}
