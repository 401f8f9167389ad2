// The production-shaped topology (infra/topology.ts) for tests: generated into a temporary folder, its
// nine servers started, and connections made as one of its roles, with that role's nkey, TLS client
// certificate and inbox prefix.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsConnection, nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  generateTopology,
  type RoleCredentials,
  type RunningTopology,
  startTopology,
  type Topology,
  type TopologyOptions,
} from "../../../infra/topology.ts";
import type { NatsAuth } from "../../../lib/transport/auth.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { natsServerNextBinary } from "../../support/choria.ts";

export interface TestTopology extends RunningTopology {
  /** Generation (certificates, configs) and start-up, in ms. */
  timings: { generateMs: number; startMs: number };
  dispose(): Promise<void>;
}

/**
 * The nats-server the cluster tests run: `CHORIA_EDGE_CLUSTER_NATS_SERVER` when set (the 2.15.3 peer build,
 * say), else the one on the PATH (Debian's 2.9.10), which does everything these tests need.
 */
export function clusterNatsServer(): string | undefined {
  return process.env.CHORIA_EDGE_CLUSTER_NATS_SERVER || undefined;
}

/**
 * The server for tests that kill or restart servers: the newest we build, unless the variable names
 * another. On 2.9.10 a bucket's stream takes from 5 s to over 20 s to elect a new leader; these tests are
 * about our parts moving, not about waiting for an old server.
 */
export function survivalNatsServer(): string {
  return clusterNatsServer() ?? natsServerNextBinary();
}

export async function startTestTopology(
  options: Omit<TopologyOptions, "dir"> & { binary?: string },
): Promise<TestTopology> {
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-topology-"));
  const startedAt = Date.now();
  const { binary, ...rest } = options;
  let topology: Topology;
  try {
    topology = await generateTopology({ ...rest, dir });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const generateMs = Date.now() - startedAt;
  const chosen = binary ?? clusterNatsServer();
  let running: RunningTopology;
  try {
    running = await startTopology(topology, chosen === undefined ? {} : { binary: chosen });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return Object.assign(running, {
    timings: { generateMs, startMs: running.startupMs },
    async dispose() {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

/** The client side of a role: what connectNats and the services' configs take. */
export function roleAuth(role: RoleCredentials): NatsAuth {
  return { type: "nkey", seed: role.seed };
}

export function roleTls(topology: Topology, role: RoleCredentials) {
  return { caFile: topology.caFile, certFile: role.certFile, keyFile: role.keyFile };
}

/** A raw nats.js connection as `role`: tests watch its status for the server's errors. */
export async function rawConnection(
  topology: Topology,
  role: RoleCredentials,
  servers: string[],
  name: string,
): Promise<NatsConnection> {
  return connect({
    servers,
    name,
    timeout: 5000,
    tls: roleTls(topology, role),
    authenticator: nkeyAuthenticator(new TextEncoder().encode(role.seed)),
    ...(role.inboxPrefix ? { inboxPrefix: role.inboxPrefix } : {}),
  });
}

/** A NatsBus (what the services use) as `role`. */
export function roleBus(
  topology: Topology,
  role: RoleCredentials,
  servers: string[],
  name: string,
): Promise<NatsBus> {
  return connectNats({
    servers,
    name,
    auth: roleAuth(role),
    tls: roleTls(topology, role),
    timeoutMs: 5000,
    ...(role.inboxPrefix ? { inboxPrefix: role.inboxPrefix } : {}),
  });
}

/** Every error the server sent a connection: its `-ERR` lines arrive as status events. */
export function serverErrors(nc: NatsConnection): string[] {
  const errors: string[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "error") errors.push(String(status.error.message));
    }
  })();
  return errors;
}

/** Resolves once `check` is true, or fails after `timeoutMs` with `what`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The log lines of the servers of one NATS cluster (where nats-server records each violation). */
export async function clusterLog(topology: Topology, cluster: string): Promise<string> {
  const logs = await Promise.all(
    topology.servers
      .filter((s) => s.cluster === cluster)
      .map((s) => readFile(s.logFile, "utf8").catch(() => "")),
  );
  return logs.join("\n");
}
