// A production-shaped topology on 127.0.0.1: a federation NATS cluster of three servers (routes between
// them, JetStream on each, a websocket listener for the edge), and a NATS cluster of three servers for each
// member collective. Every client, route and websocket listener speaks TLS with certificates from a CA
// made here; TCP clients and routes must also present one (mutual TLS). Who may publish and subscribe
// where is in the servers' own configs: each role (gateway, collector, a cluster's brokers, a collective's
// nodes) is an nkey user with allow-lists, so a refusal is the server's, whatever the client does.
//
// generateTopology writes everything into one directory (configs, certificates, nkey seeds, topology.json);
// startTopology runs the servers and waits until routes are meshed and JetStream has a leader.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { nkeys } from "@nats-io/nats-core";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type DemoPki,
  ensureDemoPki,
  issueCertificate,
  type KeyedCertificate,
} from "./pki.ts";
import { freePort } from "./ports.ts";

/** A member collective and the federation broker cluster that serves it. */
interface MemberSpec {
  /** Federation broker cluster name (`choria.federation.<cluster>.…`). */
  cluster: string;
  /** The Choria collective its nodes live in. */
  collective: string;
}

export interface TopologyOptions {
  dir: string;
  /** Name of the federation NATS cluster; default `fed`. */
  federationName?: string;
  /** Default: `dc1` serving `mcollective` and `dc2` serving `dc2`. */
  members?: MemberSpec[];
  /** Servers per NATS cluster; default 3 (JetStream R3 needs three). */
  serversPerCluster?: number;
  /**
   * The Choria caller ids the gateway signs requests for (one per HTTP key, `choria=<key>.mcollective`
   * unless the key names one, and each trigger's). Its reply permissions are made from them: see
   * gatewayPermissions.
   */
  gatewayCallerIds: string[];
  /** Choria node identities to make signing certificates for (go-choria servers need one); default none. */
  nodeIdentities?: string[];
  /** JetStream buckets, as the code names them. */
  buckets?: { jobs?: string; data?: string; replay?: string };
}

/** One nats-server of the topology. */
export interface ServerSpec {
  name: string;
  /** The NATS cluster it belongs to. */
  cluster: string;
  port: number;
  routePort: number;
  monitorPort: number;
  wsPort: number | undefined;
  jetstream: boolean;
  /** Its own directory: config, certificate, JetStream store, log. */
  dir: string;
  configFile: string;
  logFile: string;
  /** `tls://127.0.0.1:<port>` */
  url: string;
  /** `wss://127.0.0.1:<wsPort>` */
  wsUrl: string | undefined;
}

/** What a client of one role needs to connect: its nkey seed, its TLS client certificate, its inbox. */
export interface RoleCredentials {
  role: string;
  /** The nkey public key the servers know the role by. */
  publicKey: string;
  /** The nkey seed (secret); also in `seedFile`, mode 0600. */
  seed: string;
  seedFile: string;
  /** TLS client certificate and key (CN `<role>.nats.choria-edge`). */
  certFile: string;
  keyFile: string;
  /** Inbox prefix the role must use for JetStream answers; undefined for roles that make no requests. */
  inboxPrefix: string | undefined;
}

interface NatsCluster {
  name: string;
  servers: ServerSpec[];
  /** Client URLs of every server, for a client's server list. */
  urls: string[];
}

export interface Topology {
  dir: string;
  /** The CA of every TLS listener and client certificate. */
  caFile: string;
  federation: NatsCluster & { wsUrls: string[] };
  members: (NatsCluster & MemberSpec)[];
  /** Every server, federation first. */
  servers: ServerSpec[];
  roles: {
    gateway: RoleCredentials;
    collector: RoleCredentials;
    /** By broker cluster: one user, known to the federation cluster and to its member cluster. */
    brokers: Record<string, RoleCredentials>;
    /** By collective. */
    nodes: Record<string, RoleCredentials>;
  };
  buckets: { jobs: string; data: string; replay: string };
  gatewayCallerIds: string[];
  /** Choria message signing (separate from the TLS CA): its CA, the gateway's privileged certificate. */
  choria: DemoPki;
}

const DEFAULT_MEMBERS: MemberSpec[] = [
  { cluster: "dc1", collective: "mcollective" },
  { cluster: "dc2", collective: "dc2" },
];
/** The reply stream and its consumer, as lib/results/jobs/subjects.ts names them. */
const REPLY_STREAM = "CHORIA_EDGE_REPLIES";
const COLLECTOR_CONSUMER = "choria_edge_collectors";

interface Permissions {
  publish: string[];
  subscribe: string[];
}

/** md5 of a caller id, hex: the third token of its reply subjects (lib/protocol/ids.ts callerIdHash). */
export function callerHash(callerid: string): string {
  return createHash("md5").update(callerid).digest("hex");
}

/** What a client may do with one KV bucket through the JetStream API (create, read, write, watch, purge). */
function kvBucketApi(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.CREATE.${stream}`,
    `$JS.API.STREAM.PURGE.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$KV.${bucket}.>`,
  ];
}

/**
 * The gateway on the federation cluster. Publish: its clusters' federation subjects and its buckets.
 * Subscribe: the replies to its own caller ids, and its inbox.
 *
 * The rule for replies: the gateway signs each request with the caller id of the HTTP key (or trigger)
 * that asked, and listens on `<collective>.reply.<md5(caller id)>.<process token>.*` (one subscription per
 * connection, caller id and collective, shared by its requests, `.<request id>` each); for a sync request that
 * runs as a job (longer than its wait budget) it also reads its own copy of the job's replies on
 * `<collective>.reply.<md5(caller id)>.edgejob.<job id>` (a plain subscription beside the collectors'
 * stream, which still stores every reply). So it may subscribe to `<collective>.reply.<md5>.>` for each
 * caller id it signs for and each collective it reaches, and to nothing else in the reply space: it cannot
 * read the replies of anybody else on the federation (a `choria req` user's, another gateway's callers').
 * The price is that a new HTTP key or trigger means new permissions: regenerate and `nats-server --signal
 * reload`. A deployment that adds keys often could give `<collective>.reply.>` instead and lose that
 * guarantee.
 */
function gatewayPermissions(
  clusters: MemberSpec[],
  callerIds: string[],
  buckets: Topology["buckets"],
  inboxPrefix: string,
): Permissions {
  const collectives = [...new Set(clusters.map((m) => m.collective))];
  return {
    publish: [
      ...clusters.map((m) => `choria.federation.${m.cluster}.federation`),
      "$JS.API.INFO",
      ...[buckets.jobs, buckets.data, buckets.replay].flatMap(kvBucketApi),
    ],
    subscribe: [
      ...collectives.flatMap((c) => callerIds.map((id) => `${c}.reply.${callerHash(id)}.>`)),
      `${inboxPrefix}.>`,
      // The brokers' stats, for `observe` run with the gateway's credentials: counters, no request data.
      ...clusters.map((m) => `choria.federation.${m.cluster}.stats`),
    ],
  };
}

/**
 * The collectors on the federation cluster: the job replies (`<collective>.reply.*.edgejob.*`, taken
 * by their stream or, with `--capture queue`, a subscription), the reply stream and its consumer, and
 * the jobs and data buckets; its own inbox (`--inbox-prefix`), so that it reads nobody else's answers.
 */
function collectorPermissions(
  members: MemberSpec[],
  buckets: Topology["buckets"],
  inboxPrefix: string,
): Permissions {
  const collectives = [...new Set(members.map((m) => m.collective))];
  return {
    publish: [
      "$JS.API.INFO",
      `$JS.API.STREAM.INFO.${REPLY_STREAM}`,
      `$JS.API.STREAM.CREATE.${REPLY_STREAM}`,
      `$JS.API.STREAM.UPDATE.${REPLY_STREAM}`,
      `$JS.API.CONSUMER.CREATE.${REPLY_STREAM}.${COLLECTOR_CONSUMER}`,
      `$JS.API.CONSUMER.CREATE.${REPLY_STREAM}.${COLLECTOR_CONSUMER}.>`,
      `$JS.API.CONSUMER.DURABLE.CREATE.${REPLY_STREAM}.${COLLECTOR_CONSUMER}`,
      `$JS.API.CONSUMER.UPDATE.${REPLY_STREAM}.${COLLECTOR_CONSUMER}`,
      `$JS.API.CONSUMER.UPDATE.${REPLY_STREAM}.${COLLECTOR_CONSUMER}.>`,
      `$JS.API.CONSUMER.INFO.${REPLY_STREAM}.${COLLECTOR_CONSUMER}`,
      `$JS.API.CONSUMER.MSG.NEXT.${REPLY_STREAM}.${COLLECTOR_CONSUMER}`,
      `$JS.ACK.${REPLY_STREAM}.${COLLECTOR_CONSUMER}.>`,
      ...[buckets.jobs, buckets.data].flatMap(kvBucketApi),
    ],
    subscribe: [...collectives.map((c) => `${c}.reply.*.edgejob.*`), `${inboxPrefix}.>`],
  };
}

/** A broker cluster on the federation side: its requests in; replies out to its collective's reply space. */
function brokerFederationPermissions(member: MemberSpec): Permissions {
  return {
    publish: [`${member.collective}.reply.>`, `choria.federation.${member.cluster}.stats`],
    subscribe: [`choria.federation.${member.cluster}.federation`],
  };
}

/** A broker cluster on its member cluster: replies in; requests out to its collective's agents and nodes. */
function brokerCollectivePermissions(member: MemberSpec): Permissions {
  return {
    publish: [`${member.collective}.broadcast.agent.>`, `${member.collective}.node.>`],
    subscribe: [`choria.federation.${member.cluster}.collective`],
  };
}

/** Member nodes: requests of their collective in; replies to its reply space and to their brokers. */
function nodePermissions(member: MemberSpec): Permissions {
  return {
    publish: [`${member.collective}.reply.>`, `choria.federation.${member.cluster}.collective`],
    subscribe: [`${member.collective}.broadcast.agent.>`, `${member.collective}.node.>`],
  };
}

/** Writes configs, certificates, nkey seeds and topology.json into `options.dir`. */
export async function generateTopology(options: TopologyOptions): Promise<Topology> {
  const dir = resolve(options.dir);
  const members = options.members ?? DEFAULT_MEMBERS;
  const perCluster = options.serversPerCluster ?? 3;
  const federationName = options.federationName ?? "fed";
  const buckets = {
    jobs: options.buckets?.jobs ?? "choria_edge_jobs",
    data: options.buckets?.data ?? "choria_edge_data",
    replay: options.buckets?.replay ?? "choria_edge_replay",
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tlsDir = join(dir, "tls");
  const seedsDir = join(dir, "nkeys");
  await Promise.all([
    mkdir(tlsDir, { recursive: true, mode: 0o700 }),
    mkdir(seedsDir, { mode: 0o700, recursive: true }),
  ]);

  const ca = await createCertificateAuthority("choria-edge topology CA");
  const caFile = join(tlsDir, "ca.pem");
  await writeFile(caFile, ca.certPem, { mode: 0o644 });

  const ports = new Set<number>();
  const port = () => listenPort(ports);
  const serverSpec = async (cluster: string, index: number, websocket: boolean): Promise<ServerSpec> => {
    const name = `${cluster}-${index}`;
    const serverDir = join(dir, "servers", name);
    const clientPort = await port();
    const wsPort = websocket ? await port() : undefined;
    return {
      name,
      cluster,
      port: clientPort,
      routePort: await port(),
      monitorPort: await port(),
      wsPort,
      jetstream: websocket,
      dir: serverDir,
      configFile: join(serverDir, "nats.conf"),
      logFile: join(serverDir, "nats.log"),
      url: `tls://127.0.0.1:${clientPort}`,
      wsUrl: wsPort === undefined ? undefined : `wss://127.0.0.1:${wsPort}`,
    };
  };
  const indexes = Array.from({ length: perCluster }, (_, i) => i + 1);
  const federationServers: ServerSpec[] = [];
  for (const i of indexes) federationServers.push(await serverSpec(federationName, i, true));
  const memberClusters: Topology["members"] = [];
  for (const member of members) {
    const servers: ServerSpec[] = [];
    for (const i of indexes) servers.push(await serverSpec(member.cluster, i, false));
    memberClusters.push({ ...member, name: member.cluster, servers, urls: servers.map((s) => s.url) });
  }
  const allServers = [...federationServers, ...memberClusters.flatMap((c) => c.servers)];

  const role = async (name: string, inboxPrefix: string | undefined): Promise<RoleCredentials> => {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const seedFile = join(seedsDir, `${name}.nk`);
    await writeFile(seedFile, `${seed}\n`, { mode: 0o600 });
    await chmod(seedFile, 0o600);
    const cert = await writeCertificate(ca, tlsDir, `${name}.nats.choria-edge`);
    return { role: name, publicKey: user.getPublicKey(), seed, seedFile, ...cert, inboxPrefix };
  };
  const [gateway, collector, brokerList, nodeList, choria] = await Promise.all([
    role("gateway", "_INBOX_gateway"),
    role("collector", "_INBOX_collector"),
    Promise.all(members.map((m) => role(`broker-${m.cluster}`, undefined))),
    Promise.all(members.map((m) => role(`nodes-${m.collective}`, undefined))),
    ensureDemoPki(join(dir, "choria"), { nodes: options.nodeIdentities ?? [] }),
    ...allServers.map(async (server) => {
      await mkdir(server.dir, { recursive: true, mode: 0o700 });
      await writeCertificate(ca, server.dir, "server", {
        certname: `${server.name}.nats.choria-edge`,
        extraDnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"],
      });
    }),
  ]);
  const brokers = Object.fromEntries(members.map((m, i) => [m.cluster, brokerList[i]!]));
  const nodes = Object.fromEntries(members.map((m, i) => [m.collective, nodeList[i]!]));

  const user = (credentials: RoleCredentials, permissions: Permissions) => ({
    nkey: credentials.publicKey,
    permissions: { publish: { allow: permissions.publish }, subscribe: { allow: permissions.subscribe } },
  });
  const federationUsers = [
    user(gateway, gatewayPermissions(members, options.gatewayCallerIds, buckets, gateway.inboxPrefix!)),
    user(collector, collectorPermissions(members, buckets, collector.inboxPrefix!)),
    ...members.map((m) => user(brokers[m.cluster]!, brokerFederationPermissions(m))),
  ];
  for (const server of federationServers)
    await writeServerConfig(server, federationServers, caFile, federationUsers);
  for (const cluster of memberClusters) {
    const users = [
      user(brokers[cluster.cluster]!, brokerCollectivePermissions(cluster)),
      user(nodes[cluster.collective]!, nodePermissions(cluster)),
    ];
    for (const server of cluster.servers) await writeServerConfig(server, cluster.servers, caFile, users);
  }

  const topology: Topology = {
    dir,
    caFile,
    federation: {
      name: federationName,
      servers: federationServers,
      urls: federationServers.map((s) => s.url),
      wsUrls: federationServers.map((s) => s.wsUrl!),
    },
    members: memberClusters,
    servers: allServers,
    roles: { gateway, collector, brokers, nodes },
    buckets,
    gatewayCallerIds: options.gatewayCallerIds,
    choria,
  };
  // Everything but the seeds, which stay in their own files.
  const described = JSON.stringify(
    topology,
    (key, value) => (key === "seed" || key === "keyPem" ? undefined : value),
    2,
  );
  await writeFile(join(dir, "topology.json"), `${described}\n`, { mode: 0o600 });
  return topology;
}

/**
 * The topology generateTopology wrote into `dir` earlier, its seeds read back from their files; undefined
 * when there is none, or when it was made for other caller ids or its ports are taken now.
 */
export async function loadTopology(dir: string, gatewayCallerIds: string[]): Promise<Topology | undefined> {
  const text = await readFile(join(resolve(dir), "topology.json"), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const described = JSON.parse(text) as Topology;
  if (gatewayCallerIds.some((id) => !described.gatewayCallerIds.includes(id))) return undefined;
  const ports = described.servers.flatMap((s) => [s.port, s.routePort, s.monitorPort, s.wsPort ?? s.port]);
  for (const port of new Set(ports)) if (!(await canListen(port))) return undefined;
  const withSeed = async (role: RoleCredentials): Promise<RoleCredentials> => ({
    ...role,
    seed: (await readFile(role.seedFile, "utf8")).trim(),
  });
  const seeded = async (byName: Record<string, RoleCredentials>) =>
    Object.fromEntries(
      await Promise.all(Object.entries(byName).map(async ([name, role]) => [name, await withSeed(role)])),
    ) as Record<string, RoleCredentials>;
  const { roles } = described;
  return {
    ...described,
    roles: {
      gateway: await withSeed(roles.gateway),
      collector: await withSeed(roles.collector),
      brokers: await seeded(roles.brokers),
      nodes: await seeded(roles.nodes),
    },
    // Its key texts stay out of topology.json: read from their files again (renewed when near expiry).
    choria: await ensureDemoPki(described.choria.dir, { nodes: [] }),
  };
}

/**
 * A free port on 127.0.0.1 below the kernel's ephemeral range. The ports are chosen seconds before the
 * servers bind them (certificates come in between); in the ephemeral range an outgoing connection (a
 * route, any test's client) could take one meanwhile, below it only another listener can — such as
 * another topology choosing at the same time, which `reservePort` rules out.
 */
async function listenPort(taken: Set<number>): Promise<number> {
  const range = await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8").catch(() => "32768");
  const ephemeralStart = Number.parseInt(range, 10) || 32768;
  const low = 10_000;
  for (let attempt = 0; attempt < 50 && ephemeralStart > low + 1000; attempt++) {
    const candidate = low + Math.floor(Math.random() * (ephemeralStart - low));
    if (taken.has(candidate) || !(await reservePort(candidate)) || !(await canListen(candidate))) continue;
    taken.add(candidate);
    return candidate;
  }
  const fallback = await freePort();
  taken.add(fallback);
  return fallback;
}

const RESERVATIONS = join(tmpdir(), "choria-edge-topology-ports");
// Long enough for any topology to have bound what it chose; a reservation older than this is free again.
const RESERVATION_MS = 10 * 60_000;

/**
 * Claims `port` for this process among every topology on the machine (several test files start one at
 * once): a file created exclusively per port, so two topologies never choose the same free port.
 */
async function reservePort(port: number): Promise<boolean> {
  const file = join(RESERVATIONS, String(port));
  await mkdir(RESERVATIONS, { recursive: true });
  try {
    await writeFile(file, String(process.pid), { flag: "wx" });
    return true;
  } catch {
    const age =
      Date.now() -
      (await stat(file)
        .then((s) => s.mtimeMs)
        .catch(() => Date.now()));
    if (age < RESERVATION_MS) return false;
    await rm(file, { force: true });
    return reservePort(port);
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

async function writeCertificate(
  ca: CertificateAuthority,
  dir: string,
  certname: string,
  options: { certname?: string; extraDnsNames?: string[]; ipAddresses?: string[] } = {},
): Promise<{ certFile: string; keyFile: string }> {
  const issued: KeyedCertificate = await issueCertificate(ca, options.certname ?? certname, {
    ...(options.extraDnsNames ? { extraDnsNames: options.extraDnsNames } : {}),
    ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
  });
  const certFile = join(dir, `${certname}.pem`);
  const keyFile = join(dir, `${certname}-key.pem`);
  await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await writeFile(certFile, issued.certPem, { mode: 0o644 });
  return { certFile, keyFile };
}

// The least the server takes (the default is 2 min, for thousands of clients): it closes at most one
// client a second, so a server with a handful is gone in seconds anyway.
const LAME_DUCK_DURATION_S = 30;
const LAME_DUCK_GRACE_S = 1;

/** nats-server's config syntax accepts JSON values, so blocks are written as JSON. */
async function writeServerConfig(
  server: ServerSpec,
  cluster: ServerSpec[],
  caFile: string,
  users: unknown[],
): Promise<void> {
  const cert = { cert_file: join(server.dir, "server.pem"), key_file: join(server.dir, "server-key.pem") };
  const mutual = { ...cert, ca_file: caFile, verify: true, timeout: 2 };
  const block = (value: unknown) => JSON.stringify(value, null, 2);
  const lines = [
    `# ${server.name}: one of ${cluster.length} servers of NATS cluster "${server.cluster}" (made by infra/topology.ts)`,
    `server_name: "${server.name}"`,
    `listen: "127.0.0.1:${server.port}"`,
    `http: "127.0.0.1:${server.monitorPort}"`,
    "max_payload: 8MB",
    `log_file: "${server.logFile}"`,
    "# Lame duck (SIGUSR2, the rolling restart): hand JetStream leaders over, then move clients off, in seconds.",
    `lame_duck_duration: "${LAME_DUCK_DURATION_S}s"`,
    `lame_duck_grace_period: "${LAME_DUCK_GRACE_S}s"`,
    "# Clients: TLS, and a client certificate from the CA.",
    `tls: ${block(mutual)}`,
  ];
  // Routes, also TLS both ways. A single server is no cluster (JetStream would wait for peers).
  if (cluster.length > 1)
    lines.push(
      `cluster: ${block({
        name: server.cluster,
        listen: `127.0.0.1:${server.routePort}`,
        tls: mutual,
        routes: cluster.filter((s) => s !== server).map((s) => `nats-route://127.0.0.1:${s.routePort}`),
      })}`,
    );
  if (server.wsPort !== undefined) {
    // The edge (Workers) cannot present a client certificate: TLS with the server's, nkey to log in.
    lines.push(
      "# Websocket for the edge: TLS (no client certificate: a Worker cannot present one), nkey users.",
      `websocket: ${block({ listen: `127.0.0.1:${server.wsPort}`, tls: cert })}`,
    );
  }
  if (server.jetstream) {
    lines.push(
      `jetstream: ${block({ store_dir: join(server.dir, "jetstream"), max_memory_store: 67108864, max_file_store: 536870912 })}`,
    );
  }
  lines.push(
    "# Each role is an nkey user (the server holds public keys only) with allow-lists; anything else is refused.",
    `authorization: ${block({ users })}`,
  );
  await writeFile(server.configFile, `${lines.join("\n")}\n`, { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------------
// Running it

interface ServerProcess {
  readonly spec: ServerSpec;
  running(): boolean;
  /** Starts the server (again): the same config, ports and JetStream store. */
  start(): Promise<void>;
  /** SIGKILL, as a crash would; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM: the server closes its connections and stops at once; SIGKILL after 5 s. */
  stop(): Promise<void>;
  /**
   * SIGUSR2, as a rolling restart should: the server hands its JetStream leaders to peers, tells clients
   * to move, closes their connections over the lame duck duration and stops.
   */
  lameDuck(): Promise<void>;
  /** The tail of the server's log file. */
  log(): Promise<string>;
}

export interface RunningTopology {
  topology: Topology;
  servers: ServerProcess[];
  server(name: string): ServerProcess;
  /** Waits until every running server has its routes and the federation's JetStream a meta leader. */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  /** Milliseconds from the first spawn to ready. */
  startupMs: number;
}

export interface StartTopologyOptions {
  /** The nats-server program; default `$NATS_SERVER_BIN`, else `nats-server` on the PATH. */
  binary?: string;
  /** Run each server in a process group of its own (the local stack, so Ctrl-C reaches us first). */
  ownProcessGroup?: boolean;
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

function serverProcess(spec: ServerSpec, options: StartTopologyOptions): ServerProcess {
  const binary = options.binary ?? process.env.NATS_SERVER_BIN ?? "nats-server";
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = "";
  const isRunning = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const log = async () => {
    const text = await readFile(spec.logFile, "utf8").catch(() => "");
    return `${text.slice(-3000)}${stderr}`;
  };
  const end = async (signal: NodeJS.Signals, graceMs = 5000) => {
    if (!isRunning()) return;
    child!.kill(signal);
    const timer = setTimeout(() => child?.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return {
    spec,
    running: isRunning,
    async start() {
      if (isRunning()) return;
      stderr = "";
      const started = spawn(binary, ["-c", spec.configFile], {
        stdio: ["ignore", "ignore", "pipe"],
        detached: options.ownProcessGroup ?? false,
      });
      child = started;
      live.add(started);
      started.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-2000);
      });
      exited = new Promise<void>((resolve) => {
        started.once("exit", () => resolve());
        started.once("error", (err) => {
          stderr = `cannot run ${binary}: ${err.message}`;
          resolve();
        });
      }).then(() => {
        live.delete(started);
      });
      const deadline = Date.now() + 15_000;
      while (!(await canConnect(spec.port))) {
        if (!isRunning() || started.pid === undefined)
          throw new Error(`${spec.name} exited early: ${await log()}`);
        if (Date.now() > deadline) throw new Error(`${spec.name} did not listen within 15 s: ${await log()}`);
        await sleep(25);
      }
    },
    kill: () => end("SIGKILL"),
    stop: () => end("SIGTERM"),
    lameDuck: () => end("SIGUSR2", (LAME_DUCK_DURATION_S + 5) * 1000),
    log,
  };
}

/** Starts every server of the topology (all at once, as routes retry) and waits until it is ready. */
export async function startTopology(
  topology: Topology,
  options: StartTopologyOptions = {},
): Promise<RunningTopology> {
  const startedAt = Date.now();
  const servers = topology.servers.map((spec) => serverProcess(spec, options));
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  const running: RunningTopology = {
    topology,
    servers,
    server(name) {
      const found = servers.find((s) => s.spec.name === name);
      if (!found) throw new Error(`no server ${name}`);
      return found;
    },
    ready: (timeoutMs = options.readyTimeoutMs ?? 30_000) => waitReady(topology, servers, timeoutMs),
    stop,
    startupMs: 0,
  };
  try {
    await Promise.all(servers.map((s) => s.start()));
    await running.ready();
  } catch (err) {
    await stop();
    throw err;
  }
  running.startupMs = Date.now() - startedAt;
  return running;
}

async function waitReady(topology: Topology, servers: ServerProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const clusterOf = (spec: ServerSpec) => topology.servers.filter((s) => s.cluster === spec.cluster);
  for (;;) {
    const pending: string[] = [];
    await Promise.all(
      servers
        .filter((s) => s.running())
        .map(async (server) => {
          const { spec } = server;
          const peers = clusterOf(spec).filter(
            (s) => s !== spec && servers.find((p) => p.spec === s)?.running(),
          ).length;
          const routez = await monitor<{ routes?: { remote_id: string }[] }>(spec, "routez");
          const routed = new Set((routez?.routes ?? []).map((r) => r.remote_id)).size;
          if (routed < peers) pending.push(`${spec.name}: ${routed} of ${peers} routes`);
          if (spec.jetstream) {
            const jsz = await monitor<{
              meta_cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] };
            }>(spec, "jsz");
            const meta = jsz?.meta_cluster;
            if (clusterOf(spec).length === 1) {
              if (jsz === undefined) pending.push(`${spec.name}: no JetStream`);
            } else if (!meta?.leader) {
              pending.push(`${spec.name}: no JetStream meta leader`);
            } else if (meta.leader === spec.name) {
              // The leader knows whether every running peer has caught up; an R3 stream needs them all.
              const current = (meta.replicas ?? []).filter((r) => r.current).length;
              if (current < peers)
                pending.push(`${spec.name}: ${current} of ${peers} JetStream peers current`);
            }
          }
        }),
    );
    if (pending.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`topology not ready within ${timeoutMs} ms: ${pending.join("; ")}`);
    await sleep(100);
  }
}

async function monitor<T>(spec: ServerSpec, path: string): Promise<T | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${spec.monitorPort}/${path}`, {
      signal: AbortSignal.timeout(1000),
    });
    return response.ok ? ((await response.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
