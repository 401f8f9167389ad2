// The gateway and the collector as the CLI runs them, each with --metrics-listen: real signed requests
// (sync, async with a callback, refused, unrouted) move the figures their /metrics report; the gateway's
// audit lines go to the --audit file (mode 0600), not to stdout.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SigningKey } from "../../../lib/security/http/mod.ts";
import { testPki } from "../../support/pki.ts";
import { freePort } from "../../support/ports.ts";
import { TEST_SEAL_KEY } from "../results/support.ts";
import {
  type CallbackReceiver,
  CLUSTER,
  type Federation,
  signedInit,
  startCallbackReceiver,
  startFederation,
  testKeys,
} from "./support.ts";

const CLI = join(import.meta.dirname, "../../../cli/main.ts");
const NODES = 3;

interface Child {
  process: ChildProcess;
  stdout: () => string;
}

let federation: Federation;
let receiver: CallbackReceiver;
let dir: string;
let key: SigningKey;
let gateway: Child;
let collector: Child;
let gatewayUrl: string;
let gatewayMetrics: string;
let collectorMetrics: string;

/** Runs `choria-edge <args>` and waits until `ready()` says it serves. */
async function run(args: string[], ready: () => Promise<boolean>): Promise<Child> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_NO_WARNINGS: "1" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const deadline = Date.now() + 30_000;
  while (!(await ready())) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${args[0]} did not start:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { process: child, stdout: () => stdout };
}

const answers = (url: string) => () =>
  fetch(url).then(
    (response) => response.ok,
    () => false,
  );

beforeAll(async () => {
  receiver = await startCallbackReceiver();
  const [fed, pki, ports] = await Promise.all([
    startFederation(NODES, { jetstream: true }),
    testPki(),
    Promise.all([freePort(), freePort(), freePort()]),
  ]);
  federation = fed;
  const [port, gatewayMetricsPort, collectorMetricsPort] = ports;
  gatewayUrl = `http://127.0.0.1:${port}`;
  gatewayMetrics = `http://127.0.0.1:${gatewayMetricsPort}`;
  collectorMetrics = `http://127.0.0.1:${collectorMetricsPort}`;
  // The admin key, with a default callback: every job it makes reports its end to the receiver.
  const keys = await testKeys();
  key = keys.admin;
  const secret = `whsec_${btoa("observability test callback secret")}`;
  const listed = (JSON.parse(keys.json) as { keys: { id: string }[] }).keys;
  const keysJson = JSON.stringify({
    keys: listed.map((k) =>
      k.id === "admin" ? { ...k, callback: { kind: "url", url: receiver.url, secret } } : k,
    ),
  });
  dir = await mkdtemp(join(tmpdir(), "choria-edge-observ-"));
  const file = (name: string, text: string) => writeFile(join(dir, name), text).then(() => join(dir, name));
  const [cert, keyFile, keysFile] = await Promise.all([
    file("gateway.pem", pki.gateway.certPem),
    file("gateway-key.pem", pki.gateway.keyPem),
    file("keys.json", keysJson),
  ]);
  const nats = federation.federation.url;
  [collector, gateway] = await Promise.all([
    run(
      [
        "collector",
        ...["--servers", nats, "--metrics-listen", `127.0.0.1:${collectorMetricsPort}`],
        ...["--callback-seal-key", TEST_SEAL_KEY, "--sweep-interval", "100ms"],
        ...["--allow-http-callbacks", "--allow-private-callbacks"],
      ],
      answers(`${collectorMetrics}/readyz`),
    ),
    run(
      [
        "gateway",
        ...["--listen", `127.0.0.1:${port}`, "--nats-servers", nats, "--clusters", `${CLUSTER}=mcollective`],
        ...["--cert", cert, "--key", keyFile, "--keys", keysFile, "--jobs", "on"],
        ...["--callback-seal-key", TEST_SEAL_KEY, "--metrics-listen", `127.0.0.1:${gatewayMetricsPort}`],
        ...["--audit", `file:${join(dir, "audit.jsonl")}`],
      ],
      answers(`${gatewayMetrics}/healthz`),
    ),
  ]);
}, 90_000);

afterAll(async () => {
  const stopped = [gateway, collector].map(async (child) => {
    if (child === undefined || child.process.exitCode !== null) return;
    const exited = new Promise((resolve) => child.process.once("exit", resolve));
    child.process.kill("SIGTERM");
    await exited;
  });
  await Promise.allSettled(stopped);
  await federation?.stop();
  await receiver?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** One sample's value from a Prometheus text body; 0 when the series is not there yet. */
function sample(body: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of body.split("\n")) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return 0;
}

const scrape = async (base: string) => {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
};

async function rpc(body: Record<string, unknown>) {
  const url = `${gatewayUrl}/v1/rpc`;
  return fetch(
    url,
    await signedInit(url, { cluster: CLUSTER, agent: "rpcutil", action: "ping", ...body }, key),
  );
}

async function until(what: string, check: () => Promise<boolean>) {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("gateway /metrics", () => {
  it("counts requests by route, status and reason, times them, and tells the NATS state", async () => {
    const rpcOk = { route: "/v1/rpc", method: "POST", status: "200", reason: "none" };
    const unsigned = { route: "/v1/rpc", method: "POST", status: "401", reason: "missing-credentials" };
    const unrouted = { route: "unmatched", method: "GET", status: "404", reason: "not-found" };
    const before = await scrape(gatewayMetrics);

    expect((await rpc({ timeout: 5 })).status).toBe(200);
    const refused = await fetch(`${gatewayUrl}/v1/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(refused.status).toBe(401);
    expect((await fetch(`${gatewayUrl}/nowhere`)).status).toBe(404);

    const after = await scrape(gatewayMetrics);
    const requests = "choria_edge_gateway_requests_total";
    for (const labels of [rpcOk, unsigned, unrouted])
      expect(sample(after, requests, labels) - sample(before, requests, labels), JSON.stringify(labels)).toBe(
        1,
      );
    const histogram = "choria_edge_gateway_request_duration_seconds_count";
    const timed = { route: "/v1/rpc", method: "POST" };
    expect(sample(after, histogram, timed) - sample(before, histogram, timed)).toBe(2);
    expect(sample(after, "choria_edge_gateway_nats_state", { state: "connected" })).toBe(1);
    // Every node's reply (and discovery's pongs) reached the request waiting for it.
    const replies = "choria_edge_gateway_replies_total";
    const routed = { outcome: "routed" };
    expect(sample(after, replies, routed) - sample(before, replies, routed)).toBeGreaterThanOrEqual(NODES);
    expect(after).toContain(`${replies}{outcome="dropped"}`);
    expect((await fetch(`${gatewayMetrics}/readyz`)).status).toBe(200);
  });
});

describe("collector /metrics", () => {
  it("counts stored replies, the settled job and its delivered callback", async () => {
    const accepted = await rpc({ mode: "async", timeout: 5, nodes: federation.fleet.map((n) => n.identity) });
    expect(accepted.status).toBe(202);
    const { job_id: jobId } = (await accepted.json()) as { job_id: string };
    expect(await receiver.deliveriesFor(jobId)).toHaveLength(1);
    let body = "";
    await until("the callback attempt in /metrics", async () => {
      body = await scrape(collectorMetrics);
      return sample(body, "choria_edge_collector_callback_attempts_total", { outcome: "delivered" }) === 1;
    });
    expect(sample(body, "choria_edge_collector_replies_total", { outcome: "stored" })).toBe(NODES);
    expect(sample(body, "choria_edge_collector_replies_total", { outcome: "conflicts" })).toBe(0);
    expect(sample(body, "choria_edge_collector_jobs_settled_total", { state: "complete" })).toBe(1);
    expect(sample(body, "choria_edge_collector_nats_connected")).toBe(1);
    expect((await fetch(`${collectorMetrics}/healthz`)).status).toBe(200);
  });
});

describe("--audit file:<path>", () => {
  it("appends every decision to the file, readable by its owner only, and leaves stdout alone", async () => {
    const path = join(dir, "audit.jsonl");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const lines = (await readFile(path, "utf8")).trim().split("\n");
    const events = lines.map((line) => JSON.parse(line) as { decision: string; status?: number });
    expect(events.map((e) => e.status)).toEqual(expect.arrayContaining([200, 401, 202]));
    expect(gateway.stdout()).toBe("");
  });
});
