// What the local stack needs before it starts anything: Node 20.19 or newer and a nats-server 2.9 or
// newer. A missing one is told with what to install, instead of a spawn ENOENT from deep inside.
import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

const MIN_NODE = "20.19.0";
const MIN_NATS_SERVER = "2.9.0";
/** The nats-server version infra/peers.sh builds (keep in step with the script). */
export const PEERS_NATS_SERVER_VERSION = "v2.15.3";

type Env = Record<string, string | undefined>;

export class MissingPrerequisite extends Error {}

/** Where infra/peers.sh builds its peers: `CHORIA_EDGE_PEERS`, else the user's cache folder. */
export function peersDir(env: Env = process.env): string {
  if (env.CHORIA_EDGE_PEERS) return env.CHORIA_EDGE_PEERS;
  return join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "choria-edge", "peers");
}

/** The nats-server infra/peers.sh builds, whether or not it is there. */
export function peersNatsServer(env: Env = process.env): string {
  return join(peersDir(env), `nats-server-${PEERS_NATS_SERVER_VERSION}`, "nats-server");
}

/** `a.b.c` compared numerically; a missing part is 0. */
export function versionAtLeast(version: string, minimum: string): boolean {
  const parts = (v: string) => v.split(".").map((p) => Number.parseInt(p, 10) || 0);
  const [a, b] = [parts(version), parts(minimum)];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const [x, y] = [a[i] ?? 0, b[i] ?? 0];
    if (x !== y) return x > y;
  }
  return true;
}

/** The version in `nats-server --version` output (`nats-server: v2.9.10`), without its `v`. */
export function parseNatsServerVersion(text: string): string | undefined {
  return /\bv?(\d+\.\d+\.\d+)/.exec(text)?.[1];
}

export function checkNode(version = process.versions.node): void {
  if (!versionAtLeast(version, MIN_NODE))
    throw new MissingPrerequisite(
      `choria-edge needs Node ${MIN_NODE} or newer; this is Node ${version}. Install a current Node 20 or 22 (https://nodejs.org, or your package manager's nodejs).`,
    );
}

export interface NatsServerProgram {
  path: string;
  version: string;
  /** How it was found. */
  from: "NATS_SERVER_BIN" | "PATH" | "infra/peers.sh";
}

/**
 * The nats-server the stack runs: `$NATS_SERVER_BIN` when set, else the first on the PATH, else the one
 * `bash infra/peers.sh` builds. A missing or too old one throws MissingPrerequisite saying what to install.
 */
export async function findNatsServer(env: Env = process.env): Promise<NatsServerProgram> {
  if (env.NATS_SERVER_BIN) {
    const path = env.NATS_SERVER_BIN;
    if (!executable(path))
      throw new MissingPrerequisite(
        `NATS_SERVER_BIN is ${path}, which is not an executable file.\n${installHelp(env)}`,
      );
    return checked(path, "NATS_SERVER_BIN", env);
  }
  const tooOld: string[] = [];
  const onPath = searchPath("nats-server", env);
  if (onPath !== undefined) {
    const found = await checked(onPath, "PATH", env).catch((err: unknown) => {
      if (!(err instanceof MissingPrerequisite)) throw err;
      tooOld.push(err.message);
      return undefined;
    });
    if (found !== undefined) return found;
  }
  const built = peersNatsServer(env);
  if (executable(built)) return checked(built, "infra/peers.sh", env);
  const why =
    tooOld.length > 0
      ? tooOld[0]!
      : `choria-edge stack needs nats-server ${MIN_NATS_SERVER} or newer, and found none: not on the PATH, no NATS_SERVER_BIN, nothing built at ${built}.`;
  throw new MissingPrerequisite(`${why}\n${installHelp(env)}`);
}

async function checked(path: string, from: NatsServerProgram["from"], env: Env): Promise<NatsServerProgram> {
  let output: string;
  try {
    const { stdout, stderr } = await promisify(execFile)(path, ["--version"], { timeout: 10_000 });
    output = `${stdout}${stderr}`;
  } catch (err) {
    throw new MissingPrerequisite(
      `${path} --version failed (${(err as Error).message.split("\n")[0]}); is it a nats-server?\n${installHelp(env)}`,
    );
  }
  const version = parseNatsServerVersion(output);
  if (version === undefined)
    throw new MissingPrerequisite(
      `${path} --version did not print a version (${output.trim().slice(0, 80)})`,
    );
  if (!versionAtLeast(version, MIN_NATS_SERVER))
    throw new MissingPrerequisite(
      `${path} is nats-server ${version}; choria-edge stack needs ${MIN_NATS_SERVER} or newer.`,
    );
  return { path, version, from };
}

/** What to run to get a nats-server, on the systems we know. */
function installHelp(env: Env = process.env): string {
  const lines = [
    "Install nats-server, then run npm start again:",
    "  Debian/Ubuntu:  sudo apt-get install nats-server",
    "  macOS:          brew install nats-server",
  ];
  const go = searchPath("go", env) !== undefined;
  lines.push(
    `  ${go ? "with Go (found)" : "with Go 1.25+"}:  bash infra/peers.sh   (builds nats-server ${PEERS_NATS_SERVER_VERSION} into ${peersDir(env)}, which the stack then finds; it builds go-choria too, a few minutes)`,
    "or set NATS_SERVER_BIN to a nats-server program.",
  );
  return lines.join("\n");
}

function searchPath(program: string, env: Env): string | undefined {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, program);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
