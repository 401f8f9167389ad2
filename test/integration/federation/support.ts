import { type ChildProcess, spawn } from "node:child_process";
import { type AddressInfo, createServer, connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { decodeTransport, type TransportPacket, type TransportV1 } from "../../../lib/protocol/transport.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { freePort } from "../../support/ports.ts";

export const CLUSTER = "C1";
export const COLLECTIVE = "mcollective";
const CALLER_HASH = "37bdf08389145a56c13096c178802d3b";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bus(url: string, name: string): Promise<MessageBus> {
  return connectNats({ servers: url, name, timeoutMs: 2000 });
}

let sequence = 0;
export function requestId(): string {
  sequence++;
  return `${process.pid.toString(16).padStart(8, "0")}${sequence.toString(16).padStart(24, "0")}`.slice(-32);
}

export function replySubjectFor(rid: string): string {
  return `${COLLECTIVE}.reply.${CALLER_HASH}.${rid}`;
}

/** A federated request transport as a Go client builds it (spec §6.1). */
export function federatedRequest(rid: string, targets: string[], clientUrl = "nats://fed:4222"): TransportV1 {
  return {
    protocol: "choria:transport:1",
    data: btoa(JSON.stringify({ protocol: "choria:secure:request:1", message: `request ${rid}` })),
    headers: {
      "reply-to": replySubjectFor(rid),
      mc_sender: "client1",
      "seen-by": [[clientUrl, "client1", clientUrl]],
      federation: { req: rid, target: targets },
    },
  };
}

/**
 * Stands in for Choria servers until the member node replaces it: each identity listens on its node
 * subject and the rpcutil broadcast subject and answers as spec §6.3 says a server does: federation header
 * and seen-by copied from the request, its own hop appended, reply published to the request's reply-to.
 */
export function startResponders(
  collective: MessageBus,
  identities: string[],
): { received: Map<string, number> } {
  const received = new Map<string, number>();
  for (const identity of identities) {
    const answer = (data: Uint8Array) => {
      const decoded = decodeTransport(data);
      if (!decoded.ok) return;
      const request = decoded.value;
      const replyTo = request.headers["reply-to"];
      if (replyTo === undefined) return;
      received.set(identity, (received.get(identity) ?? 0) + 1);
      const url = collective.connectedUrl();
      const v1 = "protocol" in request;
      const hops = request.headers["seen-by"] ?? [];
      const reply = {
        ...(v1 ? { protocol: "choria:transport:1" } : {}),
        data: btoa(JSON.stringify({ identity, req: request.headers.federation?.req })),
        headers: {
          mc_sender: identity,
          "seen-by": [...hops, v1 ? [url, identity, url] : identity],
          ...(request.headers.federation ? { federation: request.headers.federation } : {}),
        },
      };
      collective.publish(replyTo, JSON.stringify(reply));
    };
    collective.subscribe(`${COLLECTIVE}.node.${identity}`, (msg) => answer(msg.data));
    collective.subscribe(`${COLLECTIVE}.broadcast.agent.rpcutil`, (msg) => answer(msg.data));
  }
  return { received };
}

export interface ReplyLog {
  /** rid → identities that replied, in arrival order (duplicates kept, to catch them). */
  byRequest: Map<string, string[]>;
  packets: TransportPacket[];
  /** Replies that were not valid transports: must stay empty. */
  invalid: string[];
  waitFor(rid: string, count: number, timeoutMs?: number): Promise<string[]>;
}

/** Collects every reply arriving on the client's reply subjects on the federation side. */
export function collectReplies(federation: MessageBus): ReplyLog {
  const byRequest = new Map<string, string[]>();
  const packets: TransportPacket[] = [];
  const invalid: string[] = [];
  const waiters = new Set<() => void>();
  federation.subscribe(`${COLLECTIVE}.reply.${CALLER_HASH}.*`, (msg) => {
    const decoded = decodeTransport(msg.data);
    if (!decoded.ok) {
      invalid.push(decoded.error.message);
      return;
    }
    const packet = decoded.value;
    packets.push(packet);
    const rid = msg.subject.split(".").at(-1)!;
    const inner = JSON.parse(atob(packet.data)) as { identity: string };
    byRequest.set(rid, [...(byRequest.get(rid) ?? []), inner.identity]);
    for (const wake of waiters) wake();
  });
  return {
    byRequest,
    packets,
    invalid,
    waitFor(rid, count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const got = byRequest.get(rid) ?? [];
          if (got.length < count) return;
          cleanup();
          resolve(got);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`request ${rid}: ${byRequest.get(rid)?.length ?? 0} of ${count} replies`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

export function publishRequest(federation: MessageBus, packet: TransportPacket | string): void {
  const body = typeof packet === "string" ? packet : JSON.stringify(packet);
  if (!federation.publish(`choria.federation.${CLUSTER}.federation`, encoder.encode(body)))
    throw new Error("publish refused");
}

export interface BrokerProcess {
  readonly child: ChildProcess;
  readonly httpUrl: string;
  readonly instance: string;
  output(): string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const ENTRY = join(import.meta.dirname, "broker-process.ts");
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Starts `choria-edge broker` as a separate process and waits until /readyz says it is ready. */
export async function spawnBroker(
  instance: string,
  federationUrl: string,
  collectiveUrl: string,
  extraArgs: string[] = [],
): Promise<BrokerProcess> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      // For profiling a broker under load, e.g. BROKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
      ...(process.env.BROKER_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      "--import",
      "tsx",
      ENTRY,
      "--cluster",
      CLUSTER,
      "--instance",
      instance,
      "--identity",
      `${instance}.example.net`,
      "--federation-servers",
      federationUrl,
      "--collective-servers",
      collectiveUrl,
      "--metrics-listen",
      `127.0.0.1:${port}`,
      "--stats-interval",
      "300",
      ...extraArgs,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_NO_WARNINGS: "1" } },
  );
  running.add(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const httpUrl = `http://127.0.0.1:${port}`;
  const handle: BrokerProcess = {
    child,
    httpUrl,
    instance,
    output: () => output,
    exited,
    kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`broker ${instance} exited early:\n${output}`);
    if ((await httpStatus(`${httpUrl}/readyz`)) === 200) return handle;
    await sleep(50);
  }
  await handle.kill("SIGKILL");
  throw new Error(`broker ${instance} not ready in time:\n${output}`);
}

export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

export async function httpText(url: string): Promise<string> {
  const res = await fetch(url);
  return res.text();
}

/** The value of one sample in Prometheus text, matched by name and a label subset. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
    found = true;
  }
  if (!found) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return total;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(25);
  }
}

export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export interface TcpProxy {
  /** Where clients connect instead of the target, e.g. nats://127.0.0.1:<port>. */
  readonly url: string;
  /** Drops every open connection and refuses new ones until `restore`: a network partition. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A TCP relay on 127.0.0.1 to `targetPort` that a test can cut and restore. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let isCut = false;
  const server = createServer((downstream) => {
    if (isCut) {
      downstream.destroy();
      return;
    }
    const upstream = netConnect({ host: "127.0.0.1", port: targetPort });
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
    }
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `nats://127.0.0.1:${port}`,
    cut() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      isCut = false;
    },
    close() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
