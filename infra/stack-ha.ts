// `choria-edge stack --topology ha`: the local stack on the production-shaped topology of infra/topology.ts
// (a 3-server federation cluster with JetStream R3 and a 3-server member cluster, TLS everywhere, one nkey
// user with allow-lists per role). Each service is the same command as in the single stack, connected as
// its role: its nkey seed in the environment (never on a command line), its TLS client certificate, and
// its own inbox prefix where the servers give it one.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { newSealKey } from "../lib/results/jobs/mod.ts";
import { KeyRegistry } from "../lib/security/http/mod.ts";
import { type DemoCaller, ensureDemoCaller } from "./demo-caller.ts";
import { type DemoTriggers, ensureDemoTriggers } from "./demo-triggers.ts";
import {
  beginStack,
  COLLECTIVE,
  launch,
  preferredPort,
  type RunningStack,
  recordStack,
  type StackOptions,
  type StackRun,
  waitForServices,
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

export async function startHaStack(given: StackOptions): Promise<RunningStack> {
  const { run, natsServer, stop, failed, watchChildren } = await beginStack(given);
  const { options, say, logsDir } = run;
  try {
    say("choria-edge local stack, HA topology (the first run also makes its CA, certificates and nkeys)…");
    const caller = await ensureDemoCaller(options.stateDir, options.cluster, COLLECTIVE);
    const triggers = await ensureDemoTriggers(options.stateDir, options.cluster, COLLECTIVE);
    const topology = await ensureTopology(run, caller);
    const servers = await startTopology(topology, { binary: natsServer.path, ownProcessGroup: true });
    run.afterChildren.push(() => servers.stop());
    say(`  nats-server       ${natsServer.version}  (${natsServer.path}, from ${natsServer.from})`);
    say(`  ${topology.servers.length} NATS servers ready in ${servers.startupMs} ms  (${topology.dir})`);
    const member = topology.members[0];
    if (member === undefined) throw new Error(`${topology.dir} has no member cluster`);
    const brokerMetrics = await launchHaBrokers(run, topology);
    const nodesReady = await launchHaSimulate(run, topology);
    const gateway = await launchHaGatewayAndCollector(run, topology, caller, triggers);
    watchChildren();
    await waitForServices(run, { brokerMetrics, nodesReady, gateway, caller, triggers });
    const gatewayRole = topology.roles.gateway;
    const running = {
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
      brokerMetrics,
      gatewayUrl: gateway.url,
      caller,
      triggers,
      cluster: options.cluster,
      collectiveName: COLLECTIVE,
      logsDir,
      natsServer,
    };
    const stackFile = await recordStack(options.stateDir, running);
    say(`  endpoints in ${stackFile} (the CLI commands' defaults)`);
    return { ...running, stackFile, stop, failed };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The topology in `<state>/topology`, made once and reused: made again only when it does not let the
 * gateway read the demo caller's replies or one of its ports is taken. Its JetStream stores are emptied,
 * as every stack run begins with empty buckets.
 */
async function ensureTopology(run: StackRun, caller: DemoCaller): Promise<Topology> {
  const dir = join(run.options.stateDir, "topology");
  const registry = await KeyRegistry.fromConfig(JSON.parse(await readFile(caller.keysPath, "utf8")));
  const callerId = registry.get(caller.keyId)?.callerId;
  if (callerId === undefined) throw new Error(`${caller.keysPath} has no key "${caller.keyId}"`);
  const callerIds = [callerId];
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
async function launchHaBrokers(run: StackRun, topology: Topology): Promise<string[]> {
  const brokerMetrics: string[] = [];
  for (const member of topology.members) {
    const role = topology.roles.brokers[member.cluster];
    if (role === undefined) throw new Error(`${topology.dir} has no broker role for ${member.cluster}`);
    for (let i = 1; i <= BROKERS; i++) {
      const metricsPort = await preferredPort(run.options.ports.brokerMetrics + brokerMetrics.length);
      run.children.push(
        launch(
          `broker-${member.cluster}-${i}`,
          run.logsDir,
          [
            "broker",
            "--cluster",
            member.cluster,
            "--instance",
            `b${i}`,
            "--identity",
            `broker${i}.${member.cluster}.local`,
            "--collectives",
            member.collective,
            "--federation-servers",
            topology.federation.urls.join(","),
            ...tlsFlags(topology, role, "federation-"),
            "--collective-servers",
            member.urls.join(","),
            ...tlsFlags(topology, role, "collective-"),
            "--metrics-listen",
            `127.0.0.1:${metricsPort}`,
          ],
          {
            CHORIA_EDGE_BROKER_FEDERATION_NKEY_SEED: role.seed,
            CHORIA_EDGE_BROKER_COLLECTIVE_NKEY_SEED: role.seed,
          },
        ),
      );
      brokerMetrics.push(`http://127.0.0.1:${metricsPort}`);
    }
  }
  return brokerMetrics;
}

/** The simulated nodes on the first member cluster, as its nodes role. */
async function launchHaSimulate(run: StackRun, topology: Topology): Promise<string> {
  const role = topology.roles.nodes[COLLECTIVE];
  const member = topology.members[0];
  if (role === undefined || member === undefined)
    throw new Error(`${topology.dir} has no ${COLLECTIVE} nodes`);
  const ready = join(run.options.stateDir, "simulate.ready");
  await rm(ready, { force: true });
  run.children.push(
    launch(
      "simulate",
      run.logsDir,
      [
        "simulate",
        "--nodes",
        String(run.options.nodes),
        "--collective",
        COLLECTIVE,
        // One URL: the servers tell a client the others (connect_urls), for reconnects.
        "--server",
        member.urls[0] ?? "",
        "--ca",
        topology.choria.ca.certPath,
        ...tlsFlags(topology, role),
        "--ready-file",
        ready,
      ],
      { CHORIA_EDGE_SIMULATE_NKEY_SEED: role.seed },
    ),
  );
  return ready;
}

/** The gateway and the collector as their roles, with their inbox prefixes and R3 buckets. */
async function launchHaGatewayAndCollector(
  run: StackRun,
  topology: Topology,
  caller: DemoCaller,
  triggers: DemoTriggers,
): Promise<{ url: string; readyFile: string }> {
  const { options, logsDir } = run;
  const { gateway: gatewayRole, collector: collectorRole } = topology.roles;
  const federation = topology.federation.urls.join(",");
  const gatewayPort = await preferredPort(options.ports.gateway);
  const sealKey = newSealKey();
  const readyFile = join(options.stateDir, "gateway.ready");
  await rm(readyFile, { force: true });
  run.children.push(
    launch(
      "gateway",
      logsDir,
      [
        "gateway",
        "--listen",
        `127.0.0.1:${gatewayPort}`,
        "--nats-servers",
        federation,
        ...tlsFlags(topology, gatewayRole, "nats-"),
        "--nats-inbox-prefix",
        gatewayRole.inboxPrefix ?? "_INBOX",
        "--replicas",
        REPLICAS,
        "--clusters",
        `${options.cluster}=${COLLECTIVE}`,
        "--cert",
        topology.choria.gateway.certPath,
        "--key",
        topology.choria.gateway.keyPath,
        "--keys",
        caller.keysPath,
        "--jobs",
        "on",
        "--triggers",
        triggers.triggersPath,
        "--ready-file",
        readyFile,
      ],
      {
        ...triggers.env,
        CHORIA_EDGE_GATEWAY_CALLBACK_SEAL_KEY: sealKey,
        CHORIA_EDGE_GATEWAY_NATS_NKEY_SEED: gatewayRole.seed,
      },
    ),
  );
  run.children.push(
    launch(
      "collector",
      logsDir,
      [
        "collector",
        "--servers",
        federation,
        ...tlsFlags(topology, collectorRole),
        "--inbox-prefix",
        collectorRole.inboxPrefix ?? "_INBOX",
        "--replicas",
        REPLICAS,
        "--allow-http-callbacks",
        "--allow-private-callbacks",
      ],
      {
        CHORIA_EDGE_COLLECTOR_CALLBACK_SEAL_KEY: sealKey,
        CHORIA_EDGE_COLLECTOR_NKEY_SEED: collectorRole.seed,
      },
    ),
  );
  return { url: `http://127.0.0.1:${gatewayPort}`, readyFile };
}
