import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";

export interface NatsServerOptions {
  /** Also listen for NATS over websocket (plain, no TLS) on a free port. */
  websocket?: boolean;
  /** Enable JetStream with a store in the server's temporary directory. */
  jetstream?: boolean;
  /** Server name, shown in logs and in the INFO block. */
  name?: string;
  /** Extra configuration text appended to the generated config. */
  extraConfig?: string;
  /** Reuse these ports (restarting a server on the same address). */
  port?: number;
  wsPort?: number;
  /** Reuse a directory (JetStream store survives a restart). */
  dir?: string;
  /** Write the server's log to this file instead of keeping its tail in memory. */
  logFile?: string;
  /**
   * Run in a process group of its own, so that a Ctrl-C at the terminal reaches only our process, which
   * then stops the server after its clients (the local stack). Tests leave it off, so that a Ctrl-C on a
   * test run reaches its servers too.
   */
  ownProcessGroup?: boolean;
  /** The nats-server program; default `$NATS_SERVER_BIN`, else `nats-server` on the PATH. */
  binary?: string;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly wsUrl: string | undefined;
  readonly wsPort: number | undefined;
  readonly dir: string;
  /** The server's process id, for benchmarks that read its CPU time. */
  readonly pid: number | undefined;
  readonly options: NatsServerOptions;
  /** Stops the process; keeps the directory so that `restart` can reuse the store. */
  stop(): Promise<void>;
  /** Stops the process and removes its directory. */
  dispose(): Promise<void>;
  /** Sends the process a signal: a test freezes the server with SIGSTOP, or crashes it with SIGKILL. */
  signal(name: NodeJS.Signals): void;
}

const NATS_BIN = process.env.NATS_SERVER_BIN ?? "nats-server";

/** Starts a real nats-server bound to 127.0.0.1 on free ports and waits until it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "choria-edge-nats-")));
  const port = options.port ?? (await freePort());
  const wsPort = options.websocket ? (options.wsPort ?? (await freePort())) : undefined;
  const lines = [
    `listen: "127.0.0.1:${port}"`,
    `server_name: "${options.name ?? `test_${port}`}"`,
    "max_payload: 8MB",
  ];
  if (wsPort !== undefined) lines.push(`websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }`);
  if (options.jetstream) {
    lines.push(
      `jetstream { store_dir: "${join(dir, "js")}", max_memory_store: 64MB, max_file_store: 256MB }`,
    );
  }
  if (options.logFile) lines.push(`log_file: "${options.logFile}"`);
  if (options.extraConfig) lines.push(options.extraConfig);
  const configFile = join(dir, "nats.conf");
  await writeFile(configFile, `${lines.join("\n")}\n`);

  const child = spawn(options.binary ?? NATS_BIN, ["-c", configFile], {
    stdio: ["ignore", "ignore", "pipe"],
    detached: options.ownProcessGroup ?? false,
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    // A program that cannot be started (ENOENT, EACCES) is an error here, not an unhandled 'error' event.
    child.once("error", (err) => {
      stderr = `cannot run ${options.binary ?? NATS_BIN}: ${err.message}`;
      resolve();
    });
  });
  killOnExit(child);

  try {
    await waitForPort(port, child, () => stderr);
    if (wsPort !== undefined) await waitForPort(wsPort, child, () => stderr);
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
    forget(child);
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    wsUrl: wsPort === undefined ? undefined : `ws://127.0.0.1:${wsPort}`,
    wsPort,
    dir,
    pid: child.pid,
    options: { ...options, port, wsPort, dir },
    stop,
    signal: (name) => child.kill(name),
    async dispose() {
      await stop();
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a server again on the same ports and store as one that was stopped. */
export function restartNatsServer(previous: NatsServer): Promise<NatsServer> {
  return startNatsServer(previous.options);
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.pid === undefined) await new Promise((r) => setTimeout(r, 0));
    if (child.exitCode !== null || child.pid === undefined)
      throw new Error(`nats-server exited early (${child.exitCode}): ${log()}`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server did not listen on ${port} within 10s: ${log()}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

// A test that crashes must not leave servers behind: kill whatever is still running when the worker exits.
const running = new Set<ChildProcess>();
function killOnExit(child: ChildProcess) {
  running.add(child);
}
function forget(child: ChildProcess) {
  running.delete(child);
}
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});
