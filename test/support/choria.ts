// Real Choria peers for the interop tests: go-choria servers, federation brokers and the `choria req`
// client, built by infra/peers.sh into a cache outside the repository, each run as its own process with a
// config file written here. Servers and brokers speak plain NATS (the peers are built with TLS off) and
// use the x509 file security provider with certificates from our own CA.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as yamlText } from "yaml";
import type { DemoPki, PkiFiles } from "../../infra/pki.ts";
import { PEERS_NATS_SERVER_VERSION, peersDir, peersNatsServer } from "../../infra/prerequisites.ts";

export const GO_CHORIA_VERSION = "v0.30.2";
export const NATS_SERVER_NEXT_VERSION = PEERS_NATS_SERVER_VERSION;

export function choriaBinary(): string {
  const path = join(peersDir(), `go-choria-${GO_CHORIA_VERSION}`, "choria");
  if (!existsSync(path)) throw new Error(`go-choria is not built at ${path}: run bash infra/peers.sh`);
  return path;
}

export function natsServerNextBinary(): string {
  const path = peersNatsServer();
  if (!existsSync(path)) throw new Error(`nats-server ${NATS_SERVER_NEXT_VERSION} is not built at ${path}`);
  return path;
}

/** Settings every go-choria program here shares: plain NATS, no SRV look-ups, file security. */
function securityLines(files: PkiFiles, pki: DemoPki, cacheDir: string): string[] {
  return [
    "plugin.choria.use_srv = false",
    "plugin.security.provider = file",
    `plugin.security.file.certificate = ${files.certPath}`,
    `plugin.security.file.key = ${files.keyPath}`,
    `plugin.security.file.ca = ${pki.ca.certPath}`,
    `plugin.security.file.cache = ${cacheDir}`,
  ];
}

const hostPort = (url: string) => url.replace(/^nats:\/\//, "");

interface PeerProcess {
  readonly child: ChildProcess;
  /** The program's own log file, for failure messages. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

async function spawnPeer(args: string[], dir: string, logFile: string): Promise<PeerProcess> {
  const child = spawn(choriaBinary(), args, { stdio: ["ignore", "ignore", "pipe"], cwd: dir });
  running.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      running.delete(child);
      resolve();
    }),
  );
  return {
    child,
    log: async () => `${await readFile(logFile, "utf8").catch(() => "")}${stderr}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until the program's log contains `text`, or fails with the log's tail. */
async function waitForLog(peer: PeerProcess, text: string, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (peer.child.exitCode !== null)
      throw new Error(`${what} exited early:\n${(await peer.log()).slice(-3000)}`);
    if ((await peer.log()).includes(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const tail = (await peer.log()).slice(-3000);
  await peer.stop();
  throw new Error(`${what}: no "${text}" in its log within ${timeoutMs} ms:\n${tail}`);
}

export interface ServerSpec {
  identity: string;
  facts: Record<string, unknown>;
  classes: string[];
}

export interface ChoriaServer extends PeerProcess {
  readonly identity: string;
}

/**
 * Starts `choria server run` for one identity on a member collective. RPC authorization is off (no
 * action policy files here); requests are still signature-checked against the CA, and the caller's
 * certificate name must pass go-choria's default allow list.
 */
export async function startChoriaServer(
  spec: ServerSpec,
  options: { natsUrl: string; pki: DemoPki; collective?: string },
): Promise<ChoriaServer> {
  const files = options.pki.nodes.find((n) => n.certname === spec.identity);
  if (!files) throw new Error(`no certificate for ${spec.identity}`);
  const dir = await mkdtemp(join(tmpdir(), "choria-server-"));
  const collective = options.collective ?? "mcollective";
  const logFile = join(dir, "server.log");
  await mkdir(join(dir, "cache"));
  await writeFile(join(dir, "facts.yaml"), yamlText(spec.facts));
  await writeFile(join(dir, "classes.txt"), `${spec.classes.join("\n")}\n`);
  const config = [
    `identity = ${spec.identity}`,
    `collectives = ${collective}`,
    `main_collective = ${collective}`,
    `plugin.choria.middleware_hosts = ${hostPort(options.natsUrl)}`,
    ...securityLines(files, options.pki, join(dir, "cache")),
    `classesfile = ${join(dir, "classes.txt")}`,
    `plugin.yaml = ${join(dir, "facts.yaml")}`,
    "rpcauthorization = 0",
    `logfile = ${logFile}`,
    "loglevel = debug",
  ];
  await writeFile(join(dir, "server.conf"), `${config.join("\n")}\n`);
  const peer = await spawnPeer(["server", "run", "--config", join(dir, "server.conf")], dir, logFile);
  // The last agent it subscribes at start; a request sent after this line is heard.
  await waitForLog(
    peer,
    `Subscribing to ${collective}.node.${spec.identity}`,
    `choria server ${spec.identity}`,
  );
  await waitForLog(peer, "Subscribing agent rpcutil", `choria server ${spec.identity}`);
  return { ...peer, identity: spec.identity };
}

/**
 * Starts go-choria's federation broker (`choria broker run` with `plugin.choria.broker_federation`)
 * for `cluster` between a federation nats-server and a member collective's.
 */
export async function startChoriaFederationBroker(options: {
  cluster: string;
  federationUrl: string;
  collectiveUrl: string;
  pki: DemoPki;
  /** Certificate to present; any from our CA will do, the broker signs nothing. */
  identity: string;
  statsPort?: number;
}): Promise<PeerProcess> {
  const files = options.pki.nodes.find((n) => n.certname === options.identity);
  if (!files) throw new Error(`no certificate for ${options.identity}`);
  const dir = await mkdtemp(join(tmpdir(), "choria-broker-"));
  const logFile = join(dir, "broker.log");
  await mkdir(join(dir, "cache"));
  const config = [
    `identity = ${options.identity}`,
    "plugin.choria.broker_federation = true",
    "plugin.choria.broker_network = false",
    `plugin.choria.federation.cluster = ${options.cluster}`,
    `plugin.choria.federation_middleware_hosts = ${hostPort(options.federationUrl)}`,
    `plugin.choria.middleware_hosts = ${hostPort(options.collectiveUrl)}`,
    ...securityLines(files, options.pki, join(dir, "cache")),
    `plugin.choria.stats_port = ${options.statsPort ?? 0}`,
    `logfile = ${logFile}`,
    "loglevel = debug",
  ];
  await writeFile(join(dir, "broker.conf"), `${config.join("\n")}\n`);
  const peer = await spawnPeer(["broker", "run", "--config", join(dir, "broker.conf")], dir, logFile);
  // Ten connections a side, each logs when it is up; the ingest workers subscribe right after.
  await waitForLog(
    peer,
    `Subscribing to choria.federation.${options.cluster}.federation`,
    "federation broker",
  );
  await waitForLog(
    peer,
    `Subscribing to choria.federation.${options.cluster}.collective`,
    "federation broker",
  );
  return peer;
}

/** A client config for `choria req`, direct to a collective or federated through `federation`. */
export async function writeClientConfig(options: {
  pki: DemoPki;
  natsUrl: string;
  federation?: { cluster: string; url: string };
  dir: string;
  collective?: string;
}): Promise<string> {
  const collective = options.collective ?? "mcollective";
  await mkdir(join(options.dir, "client-cache"), { recursive: true });
  const lines = [
    `identity = ${options.pki.client.certname}`,
    `collectives = ${collective}`,
    `main_collective = ${collective}`,
    `plugin.choria.middleware_hosts = ${hostPort(options.natsUrl)}`,
    ...securityLines(options.pki.client, options.pki, join(options.dir, "client-cache")),
  ];
  if (options.federation) {
    lines.push(
      `plugin.choria.federation.collectives = ${options.federation.cluster}`,
      `plugin.choria.federation_middleware_hosts = ${hostPort(options.federation.url)}`,
    );
  }
  const path = join(options.dir, options.federation ? "client-federated.conf" : "client.conf");
  await writeFile(path, `${lines.join("\n")}\n`);
  return path;
}

export interface ReqReply {
  sender: string;
  statuscode: number;
  statusmsg: string;
  data: Record<string, unknown>;
}

export interface ReqResult {
  replies: ReqReply[];
  request_stats: {
    requestid: string;
    discovered: number;
    ok: number;
    failed: number;
    responses: number;
    no_responses: string[];
    unexpected_responses: string[];
  };
}

/**
 * Runs `choria req <agent> <action> …args --json` and parses what it prints. Its standard input is
 * /dev/null: given an open pipe there, `choria req` waits to read node names from it.
 */
export function choriaReq(config: string, args: string[], timeoutMs = 20_000): Promise<ReqResult> {
  const what = `choria req ${args.join(" ")}`;
  return new Promise((resolve, reject) => {
    const child = spawn(choriaBinary(), ["req", ...args, "--config", config, "--json"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${what}: exit ${code ?? signal}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as ReqResult);
      } catch {
        reject(new Error(`${what} printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}
