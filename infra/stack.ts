// The local stack behind `npm start`: everything on 127.0.0.1, started in dependency order, stopped
// together. Each service is a real process, the same command an operator would run.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, fchmodSync, openSync, type WriteStream } from "node:fs";
import { chmod, mkdir, open, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { cliEntry } from "../lib/config/mod.ts";
import { newSealKey } from "../lib/results/jobs/mod.ts";
import { type DemoCaller, ensureDemoCaller } from "./demo-caller.ts";
import { type DemoTriggers, ensureDemoTriggers } from "./demo-triggers.ts";
import { type NatsServer, startNatsServer } from "./nats-server.ts";
import { type DemoPki, ensureDemoPki } from "./pki.ts";
import { freePort } from "./ports.ts";
import { checkNode, findNatsServer, type NatsServerProgram } from "./prerequisites.ts";
import { readStackFile, removeStackFile, writeStackFile } from "./stack-file.ts";

export interface StackOptions {
  stateDir: string;
  /** Simulated member nodes. */
  nodes: number;
  /** Federation broker cluster name; the member collective is `mcollective`. */
  cluster: string;
  brokers: number;
  /** Preferred ports; a busy one is replaced by a free one. */
  ports: {
    federation: number;
    federationWs: number;
    collective: number;
    brokerMetrics: number;
    gateway: number;
  };
  log?: (line: string) => void;
}

export interface RunningStack {
  /** The demo Choria PKI: the nodes' CA, the gateway's and the RPC client's certificates. */
  pki: DemoPki;
  /** The first federation server (the one a command given a single URL connects to). */
  federation: Pick<NatsServer, "url" | "wsUrl">;
  collective: Pick<NatsServer, "url">;
  /** With `--topology ha`: the generated topology's servers and the credentials its clients need. */
  ha?: HaEndpoints;
  brokerMetrics: string[];
  gatewayUrl: string;
  /** Base URLs of the gateway's and the collector's /metrics, /healthz and /readyz listeners. */
  gatewayMetrics: string;
  collectorMetrics: string;
  caller: DemoCaller;
  /** The demo webhook trigger file the gateway serves, and the demo GitHub secret. */
  triggers: DemoTriggers;
  cluster: string;
  collectiveName: string;
  logsDir: string;
  /** The nats-server program both servers run. */
  natsServer: NatsServerProgram;
  /** `stack.json` in the state folder: these endpoints, for the CLI commands' defaults. */
  stackFile: string;
  stop(): Promise<void>;
  /** Resolves when a service stops unexpectedly, naming it. */
  failed: Promise<string>;
}

export interface HaEndpoints {
  dir: string;
  caFile: string;
  federationUrls: string[];
  collectiveUrls: string[];
  /** The gateway role: the one allowed the data bucket and the demo caller's replies. */
  gateway: { seedFile: string; certFile: string; keyFile: string; inboxPrefix: string };
}

export const COLLECTIVE = "mcollective";

/** What the start-up steps share: the options, where to log, and every server and service started. */
export interface StackRun {
  options: StackOptions;
  say: (line: string) => void;
  logsDir: string;
  servers: NatsServer[];
  children: Service[];
  /** Steps after the services have stopped (a topology's servers). */
  afterChildren: (() => Promise<void>)[];
}

/** What a topology's start-up made: its servers' endpoints and the services, on their way up. */
export interface StartedServices {
  pki: DemoPki;
  federation: RunningStack["federation"];
  collective: RunningStack["collective"];
  ha?: HaEndpoints;
  brokerMetrics: string[];
  /** The file the simulated nodes write once subscribed. */
  nodesReady: string;
  gateway: GatewayAndCollector;
  caller: DemoCaller;
  triggers: DemoTriggers;
}

/**
 * The steps every topology shares around its own `startServices`: the checks, the private logs folder,
 * waiting for the services, stack.json, and stopping in order (also when start-up fails).
 */
export async function launchStack(
  given: StackOptions,
  startServices: (run: StackRun, natsServer: NatsServerProgram) => Promise<StartedServices>,
): Promise<RunningStack> {
  // Absolute, so that stack.json's paths hold from any working folder.
  const options = { ...given, stateDir: resolve(given.stateDir) };
  const say = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const natsServer = await checkCanStart(options.stateDir);
  const logsDir = join(options.stateDir, "logs");
  // The logs hold audit lines and server logs: the owner's alone, however old the directory is.
  await mkdir(logsDir, { recursive: true, mode: 0o700 });
  await chmod(logsDir, 0o700);
  const run: StackRun = { options, say, logsDir, servers: [], children: [], afterChildren: [] };
  let failure: (name: string) => void = () => {};
  const failed = new Promise<string>((resolve) => {
    failure = resolve;
  });
  let stopping = false;
  const stop = async () => {
    stopping = true;
    // First, so that no command takes its defaults from a stack on its way down.
    await removeStackFile(options.stateDir).catch(() => {});
    // Reverse start order: clients first, so that nothing logs a flood of reconnect attempts.
    for (const child of run.children.reverse()) await child.stop();
    await Promise.all(run.servers.map((s) => s.dispose()));
    for (const step of run.afterChildren) await step();
  };

  try {
    const { nodesReady, gateway, ...started } = await startServices(run, natsServer);
    for (const child of run.children) {
      void child.exited.then((code) => {
        if (!stopping) failure(`${child.name} exited with ${code}; see ${child.logPath}`);
      });
    }
    await waitForServices(run, { ...started, nodesReady, gateway });
    const running = {
      ...started,
      gatewayUrl: gateway.url,
      gatewayMetrics: gateway.metricsUrl,
      collectorMetrics: gateway.collectorMetricsUrl,
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

export function startStack(given: StackOptions): Promise<RunningStack> {
  return launchStack(given, async (run, natsServer) => {
    const { options, say } = run;
    say(
      "choria-edge local stack (the first run also makes demo certificates, a caller key and a webhook secret)…",
    );
    const pki = await ensureDemoPki(join(options.stateDir, "pki"));
    const caller = await ensureDemoCaller(options.stateDir, options.cluster, COLLECTIVE);
    const triggers = await ensureDemoTriggers(options.stateDir, options.cluster, COLLECTIVE);
    const { federation, collective } = await startServers(run, natsServer);
    const brokerMetrics = await launchBrokers(run, [
      {
        cluster: options.cluster,
        collective: COLLECTIVE,
        count: options.brokers,
        federationServers: federation.url,
        collectiveServers: collective.url,
        args: [],
        env: {},
      },
    ]);
    const nodesReady = await launchSimulate(run, {
      server: collective.url,
      ca: pki.ca.certPath,
      args: [],
      env: {},
    });
    const plain = { args: [], env: {} };
    const nats = { servers: federation.url, gateway: plain, collector: plain };
    const gateway = await launchGatewayAndCollector(run, nats, pki, caller, triggers);
    return { pki, federation, collective, brokerMetrics, nodesReady, gateway, caller, triggers };
  });
}

/** Waits until the brokers, the simulated nodes and the gateway say they are ready, telling each. */
async function waitForServices(
  run: StackRun,
  started: {
    brokerMetrics: string[];
    nodesReady: string;
    gateway: GatewayAndCollector;
    caller: DemoCaller;
    triggers: DemoTriggers;
  },
): Promise<void> {
  const { options, say } = run;
  const { brokerMetrics, gateway, caller, triggers } = started;
  await waitFor("brokers ready", async () => {
    const answers = await Promise.all(brokerMetrics.map((url) => fetchOk(`${url}/readyz`)));
    return answers.every(Boolean);
  });
  say(
    `  ${brokerMetrics.length} federation brokers, cluster "${options.cluster}"  (metrics ${brokerMetrics.join(", ")})`,
  );
  await waitForReadyFile("simulated nodes ready", started.nodesReady);
  say(`  ${options.nodes} simulated nodes`);
  await waitForReadyFile("gateway ready", gateway.readyFile);
  say(`  gateway           ${gateway.url}  (caller key "${caller.keyId}": ${caller.keyPath})`);
  await waitFor("collector ready", () => fetchOk(`${gateway.collectorMetricsUrl}/readyz`));
  say(`  metrics           gateway ${gateway.metricsUrl}, collector ${gateway.collectorMetricsUrl}`);
  say(`  webhook triggers  ${triggers.triggersPath}  (POST ${gateway.url}/v1/hooks/<name>)`);
  say(`  logs in ${run.logsDir}`);
}

/** Before anything is made or started: what is missing is told with what to install. */
async function checkCanStart(stateDir: string): Promise<NatsServerProgram> {
  checkNode();
  const natsServer = await findNatsServer();
  const existing = readStackFile(stateDir);
  if (existing.state === "running")
    throw new Error(
      `a stack from ${stateDir} is already running (pid ${existing.stack.pid}, gateway ${existing.stack.gateway_url}); stop it first, or set CHORIA_EDGE_HOME to another folder`,
    );
  return natsServer;
}

async function startServers(
  run: StackRun,
  natsServer: NatsServerProgram,
): Promise<{ federation: NatsServer; collective: NatsServer }> {
  const { options, logsDir } = run;
  const federation = await startNatsServer({
    name: "federation",
    port: await preferredPort(options.ports.federation),
    websocket: true,
    wsPort: await preferredPort(options.ports.federationWs),
    jetstream: true,
    binary: natsServer.path,
    dir: await freshDir(join(options.stateDir, "nats-federation")),
    logFile: await privateLogFile(join(logsDir, "nats-federation.log")),
    ownProcessGroup: true,
  });
  run.servers.push(federation);
  const collective = await startNatsServer({
    name: "collective",
    port: await preferredPort(options.ports.collective),
    binary: natsServer.path,
    dir: await freshDir(join(options.stateDir, "nats-collective")),
    logFile: await privateLogFile(join(logsDir, "nats-collective.log")),
    ownProcessGroup: true,
  });
  run.servers.push(collective);
  run.say(`  nats-server       ${natsServer.version}  (${natsServer.path}, from ${natsServer.from})`);
  run.say(`  federation NATS   ${federation.url}  (websocket ${federation.wsUrl})`);
  run.say(`  collective NATS   ${collective.url}  (member collective "${COLLECTIVE}")`);
  return { federation, collective };
}

/** One federation broker cluster to run: its member collective, both sides' servers, and how they connect. */
export interface BrokerCluster {
  cluster: string;
  collective: string;
  count: number;
  federationServers: string;
  collectiveServers: string;
  /** Flags and environment for the NATS connections (TLS files, nkey seeds); none on the single stack. */
  args: string[];
  env: Record<string, string>;
}

/** The broker workers; their metrics URLs, whose /readyz says when each is ready. */
export async function launchBrokers(run: StackRun, clusters: BrokerCluster[]): Promise<string[]> {
  const brokerMetrics: string[] = [];
  for (const spec of clusters) {
    for (let i = 1; i <= spec.count; i++) {
      const n = brokerMetrics.length + 1;
      const metricsPort = await preferredPort(run.options.ports.brokerMetrics + n - 1);
      const args = [
        "broker",
        "--cluster",
        spec.cluster,
        "--instance",
        `b${i}`,
        "--identity",
        `broker${i}.${spec.cluster}.local`,
        "--collectives",
        spec.collective,
        "--federation-servers",
        spec.federationServers,
        "--collective-servers",
        spec.collectiveServers,
        ...spec.args,
        "--metrics-listen",
        `127.0.0.1:${metricsPort}`,
      ];
      run.children.push(launch(`broker-${n}`, run.logsDir, args, spec.env));
      brokerMetrics.push(`http://127.0.0.1:${metricsPort}`);
    }
  }
  return brokerMetrics;
}

/** The simulated nodes on `server`, trusting the Choria CA `ca`; the file they write once every node is subscribed. */
export async function launchSimulate(
  run: StackRun,
  nats: { server: string; ca: string; args: string[]; env: Record<string, string> },
): Promise<string> {
  const ready = join(run.options.stateDir, "simulate.ready");
  await rm(ready, { force: true });
  const args = [
    "simulate",
    "--nodes",
    String(run.options.nodes),
    "--collective",
    COLLECTIVE,
    "--server",
    nats.server,
    "--ca",
    nats.ca,
    ...nats.args,
    "--ready-file",
    ready,
  ];
  run.children.push(launch("simulate", run.logsDir, args, nats.env));
  return ready;
}

/** How the gateway and the collector reach the federation NATS: its URLs, and each one's own flags and environment. */
export interface FederationClients {
  servers: string;
  gateway: { args: string[]; env: Record<string, string> };
  collector: { args: string[]; env: Record<string, string> };
}

/** Where the gateway and the collector listen, and the file the gateway writes once listening. */
export interface GatewayAndCollector {
  url: string;
  readyFile: string;
  metricsUrl: string;
  collectorMetricsUrl: string;
}

/** The gateway and the async result collector, each with its metrics listener on a free port. */
export async function launchGatewayAndCollector(
  run: StackRun,
  nats: FederationClients,
  pki: DemoPki,
  caller: DemoCaller,
  triggers: DemoTriggers,
): Promise<GatewayAndCollector> {
  const { options, logsDir } = run;
  const gatewayPort = await preferredPort(options.ports.gateway);
  const [gatewayMetricsPort, collectorMetricsPort] = [await freePort(), await freePort()];
  // Gateway and collector share a fresh key to seal callback secrets in job records (environment, not
  // flags: a command line is visible to every user of the machine).
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
        nats.servers,
        ...nats.gateway.args,
        "--clusters",
        `${options.cluster}=${COLLECTIVE}`,
        "--cert",
        pki.gateway.certPath,
        "--key",
        pki.gateway.keyPath,
        "--keys",
        caller.keysPath,
        "--jobs",
        "on",
        "--triggers",
        triggers.triggersPath,
        "--ready-file",
        readyFile,
        "--metrics-listen",
        `127.0.0.1:${gatewayMetricsPort}`,
      ],
      { ...triggers.env, ...nats.gateway.env, CHORIA_EDGE_GATEWAY_CALLBACK_SEAL_KEY: sealKey },
    ),
  );
  // Stores the replies of async requests; it creates the jobs bucket and the reply stream when missing.
  run.children.push(
    // Callbacks of the local stack go to receivers on 127.0.0.1: plain http and private addresses allowed.
    launch(
      "collector",
      logsDir,
      [
        "collector",
        "--servers",
        nats.servers,
        ...nats.collector.args,
        "--allow-http-callbacks",
        "--allow-private-callbacks",
        "--metrics-listen",
        `127.0.0.1:${collectorMetricsPort}`,
      ],
      { ...nats.collector.env, CHORIA_EDGE_COLLECTOR_CALLBACK_SEAL_KEY: sealKey },
    ),
  );
  return {
    url: `http://127.0.0.1:${gatewayPort}`,
    readyFile,
    metricsUrl: `http://127.0.0.1:${gatewayMetricsPort}`,
    collectorMetricsUrl: `http://127.0.0.1:${collectorMetricsPort}`,
  };
}

/** Writes stack.json: where everything listens and the demo files, for the CLI commands' defaults. */
function recordStack(
  stateDir: string,
  stack: Omit<RunningStack, "stackFile" | "stop" | "failed">,
): Promise<string> {
  const { pki, caller, triggers } = stack;
  return writeStackFile(stateDir, {
    version: 1,
    pid: process.pid,
    started_at: new Date().toISOString(),
    home: stateDir,
    cluster: stack.cluster,
    collective: stack.collectiveName,
    federation: { url: stack.federation.url, websocket_url: stack.federation.wsUrl ?? "" },
    collective_url: stack.collective.url,
    gateway_url: stack.gatewayUrl,
    broker_metrics: stack.brokerMetrics,
    gateway_metrics: stack.gatewayMetrics,
    collector_metrics: stack.collectorMetrics,
    keys: {
      caller: caller.keyPath,
      caller_id: caller.keyId,
      client_cert: pki.client.certPath,
      client_key: pki.client.keyPath,
      ca: pki.ca.certPath,
      webhook_secret: triggers.secretPath,
    },
    triggers: triggers.triggersPath,
    logs: stack.logsDir,
    ...(stack.ha
      ? {
          topology: {
            dir: stack.ha.dir,
            ca: stack.ha.caFile,
            federation_urls: stack.ha.federationUrls,
            collective_urls: stack.ha.collectiveUrls,
            gateway: {
              nkey_seed_file: stack.ha.gateway.seedFile,
              tls_cert: stack.ha.gateway.certFile,
              tls_key: stack.ha.gateway.keyFile,
              inbox_prefix: stack.ha.gateway.inboxPrefix,
            },
          },
        }
      : {}),
  });
}

export interface Service {
  name: string;
  logPath: string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export function launch(
  name: string,
  logsDir: string,
  args: string[],
  env: Record<string, string> = {},
): Service {
  const logPath = join(logsDir, `${name}.log`);
  // Mode 0600 on a new file; an existing one (an earlier run's, maybe looser) is tightened too.
  const fd = openSync(logPath, "a", 0o600);
  fchmodSync(fd, 0o600);
  const log: WriteStream = createWriteStream(logPath, { fd });
  const child: ChildProcess = spawn(process.execPath, [cliEntry(), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
    // Own process group, so that Ctrl-C reaches only the stack, which stops services in order.
    detached: true,
  });
  process.once("exit", () => child.kill("SIGKILL"));
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    name,
    logPath,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      log.end();
    },
  };
}

/**
 * Creates the log file with mode 0600 (or tightens an existing one) before a nats-server writes to it:
 * nats-server appends to an existing file as it is, but would create a new one with mode 0640.
 */
export async function privateLogFile(path: string): Promise<string> {
  const file = await open(path, "a", 0o600);
  try {
    await file.chmod(0o600);
  } finally {
    await file.close();
  }
  return path;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitForReadyFile(what: string, path: string): Promise<void> {
  await waitFor(what, async () => (await readFile(path, "utf8").catch(() => "")).startsWith("ready"));
}

async function fetchOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/** The preferred port when it is free on 127.0.0.1, else any free port. */
async function preferredPort(port: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
  return free ? port : freePort();
}

/** NATS state does not outlive a stack run: each start begins with empty streams. */
async function freshDir(path: string): Promise<string> {
  await rm(path, { recursive: true, force: true });
  await mkdir(path, { recursive: true });
  return path;
}
