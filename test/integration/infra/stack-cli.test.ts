// `choria-edge stack` as an operator runs it, with every port it prefers already taken: it moves each
// service to a free port, says where in its banner and in $CHORIA_EDGE_HOME/stack.json, and the other
// commands, given no address or key flags, reach that stack and not whatever holds the usual ports.
// The PATH has no nats-server, so the stack also shows that it finds the one infra/peers.sh builds.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { type AddressInfo, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runData } from "../../../cli/data.ts";
import { runHook } from "../../../cli/hook.ts";
import { runObserve } from "../../../cli/observe.ts";
import { runReq } from "../../../cli/req.ts";
import { runTrace } from "../../../cli/trace.ts";
import { findNatsServer, PEERS_NATS_SERVER_VERSION } from "../../../infra/prerequisites.ts";
import type { StackFile } from "../../../infra/stack-file.ts";
import { capture, runCli, untilReady } from "./cli-support.ts";

const NODE0 = "node0000.mcollective.example.net";
const ENV_DEFAULTS = [
  "CHORIA_EDGE_REQ_GATEWAY",
  "CHORIA_EDGE_REQ_KEY",
  "CHORIA_EDGE_REQ_KEY_ID",
  "CHORIA_EDGE_REQ_CLUSTER",
  "CHORIA_EDGE_BROKER_CLUSTER",
  "CHORIA_EDGE_BROKER_FEDERATION_SERVERS",
  "CHORIA_EDGE_BROKER_SERVERS",
  "CHORIA_EDGE_GATEWAY_NATS_SERVERS",
  "CHORIA_EDGE_HOOK_URL",
];

const listen = <T extends Server | HttpServer>(server: T) =>
  new Promise<T>((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
const portOf = (server: Server | HttpServer) => (server.address() as AddressInfo).port;
const portIn = (url: string) => Number(new URL(url).port);

describe("choria-edge stack on busy ports, and the commands that find it", () => {
  const dirs: string[] = [];
  let home: string;
  let env: NodeJS.ProcessEnv;
  const decoys: Server[] = [];
  let decoyGateway: HttpServer;
  const decoyHits: string[] = [];
  let stack: ReturnType<typeof runCli>;
  let file: StackFile;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    const temp = async (name: string) => {
      const dir = await mkdtemp(join(tmpdir(), `choria-edge-${name}-`));
      dirs.push(dir);
      return dir;
    };
    home = await temp("stack-home");
    // No nats-server on the PATH; one where infra/peers.sh would have built it.
    const peers = await temp("peers");
    const built = join(peers, `nats-server-${PEERS_NATS_SERVER_VERSION}`);
    await mkdir(built);
    await symlink((await findNatsServer()).path, join(built, "nats-server"));
    env = { ...process.env, CHORIA_EDGE_HOME: home, CHORIA_EDGE_PEERS: peers, PATH: await temp("path") };
    delete env.NATS_SERVER_BIN;
    for (const name of ENV_DEFAULTS) delete env[name];

    // Every port the stack prefers is taken; the gateway's by an HTTP server that counts who calls it.
    for (let i = 0; i < 4; i++) decoys.push(await listen(createServer((socket) => socket.destroy())));
    decoyGateway = await listen(
      createHttpServer((req, res) => {
        decoyHits.push(`${req.method} ${req.url}`);
        res.writeHead(418, { "content-type": "application/problem+json" });
        res.end(JSON.stringify({ title: "decoy", detail: "not the stack" }));
      }),
    );
    const [federation, websocket, collective, metrics] = decoys.map(portOf);
    stack = runCli(
      [
        "stack",
        "--nodes",
        "6",
        "--brokers",
        "1",
        "--federation-port",
        String(federation),
        "--websocket-port",
        String(websocket),
        "--collective-port",
        String(collective),
        "--metrics-port",
        String(metrics),
        "--gateway-port",
        String(portOf(decoyGateway)),
      ],
      env,
    );
    await untilReady(stack, 100_000);
    file = JSON.parse(await readFile(join(home, "stack.json"), "utf8")) as StackFile;

    // The commands run here, in this process, as the stack's user in another terminal would.
    for (const name of [...ENV_DEFAULTS, "CHORIA_EDGE_HOME"]) {
      saved[name] = process.env[name];
      delete process.env[name];
    }
    process.env.CHORIA_EDGE_HOME = home;
  }, 120_000);

  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    if (stack !== undefined && stack.child.exitCode === null) {
      stack.child.kill("SIGINT");
      const timer = setTimeout(() => stack.child.kill("SIGKILL"), 20_000);
      await stack.done;
      clearTimeout(timer);
    }
    for (const server of [...decoys, decoyGateway]) await new Promise((r) => server?.close(r));
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it("moves every busy port, writes stack.json, and prints every command with the real addresses", () => {
    const taken = [...decoys.map(portOf), portOf(decoyGateway)];
    const used = [
      portIn(file.federation.url),
      portIn(file.federation.websocket_url),
      portIn(file.collective_url),
      portIn(file.broker_metrics[0]!),
      portIn(file.gateway_url),
    ];
    for (const port of used) expect(taken).not.toContain(port);
    expect(file).toMatchObject({
      pid: stack.child.pid,
      home,
      cluster: "dc1",
      collective: "mcollective",
      keys: {
        caller: join(home, "demo-caller.json"),
        client_cert: join(home, "pki", "rip.mcollective.pem"),
        client_key: join(home, "pki", "rip.mcollective-key.pem"),
        webhook_secret: join(home, "demo-github-secret"),
      },
    });
    const banner = stack.output();
    expect(banner).toMatch(/nats-server {7}2\.\d+\.\d+ {2}\(.*, from infra\/peers\.sh\)/);
    expect(banner).toContain(`req --gateway ${file.gateway_url} --key ${file.keys.caller}`);
    expect(banner).toContain(`--server ${file.federation.url} --cluster dc1`);
    expect(banner).toContain(`--cert ${file.keys.client_cert} --key ${file.keys.client_key}`);
    expect(banner).toContain(`observe --server ${file.federation.url} --cluster dc1`);
    expect(banner).toContain(`curl -s ${file.broker_metrics[0]}/metrics`);
    expect(banner).toContain(`curl -sS ${file.gateway_url}/v1/rpc`);
    expect(banner).toContain(`hook send github-push --url ${file.gateway_url}`);
    expect(banner).toContain(`--secret-file ${file.keys.webhook_secret} --key ${file.keys.caller} --wait`);
    expect(banner).toContain(`data get deploy/last-sha --server ${file.federation.url}`);
    expect(banner).not.toMatch(/:(4222|4223|4322|8080|9101)\b/);
  });

  it("serves /metrics for the brokers, the gateway and the collector, on free ports named in stack.json and the banner", async () => {
    // Each with a family of its own: a listener answering for another service would not have it.
    const metrics: [string, string][] = [
      [file.broker_metrics[0] ?? "", "choria_federation_"],
      [file.gateway_metrics, "choria_edge_gateway_"],
      [file.collector_metrics, "choria_edge_collector_"],
    ];
    const taken = [...decoys.map(portOf), portOf(decoyGateway), portIn(file.gateway_url)];
    for (const [url, family] of metrics) {
      expect(taken, family).not.toContain(portIn(url));
      expect(stack.output()).toContain(`curl -s ${url}/metrics`);
      const answer = await fetch(`${url}/metrics`);
      expect(answer.status, family).toBe(200);
      expect(answer.headers.get("content-type"), family).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await answer.text();
      expect(text, family).toMatch(new RegExp(`^# TYPE ${family}\\w+ `, "m"));
    }
  });

  it("req takes the gateway, key and cluster from stack.json and shows each reply's data", async () => {
    const inventory = capture();
    expect(await runReq(["--identity", NODE0, "rpcutil", "inventory"], inventory.io)).toBe(0);
    const [header, row] = inventory.stdout().split("\n");
    expect(header).toMatch(/^identity\s+status\s+statusmsg\s+ms\s+data$/);
    expect(row).toMatch(
      /^node0000\.mcollective\.example\.net\s+OK\s+OK\s+\d+\s+main_collective=mcollective version="choria-edge-node 0\.1\.0" agents=\[3\] facts=\{\d+\} classes=\[\d+\]/,
    );

    const chosen = capture();
    expect(
      await runReq(
        ["--identity", NODE0, "--fields", "facts.role,agents,nothing", "rpcutil", "inventory"],
        chosen.io,
      ),
    ).toBe(0);
    expect(chosen.stdout()).toMatch(/\bfacts\.role=web agents=\["rpcutil","discovery","demo"\] nothing=-\n/);

    const json = capture();
    expect(await runReq(["--identity", NODE0, "--json", "rpcutil", "inventory"], json.io)).toBe(0);
    expect(JSON.parse(json.stdout())).toMatchObject({
      replies: [{ identity: NODE0, data: { main_collective: "mcollective", facts: { role: "web" } } }],
    });
    expect(decoyHits).toEqual([]);
  });

  it("flags win over the environment, and the environment over stack.json", async () => {
    process.env.CHORIA_EDGE_REQ_GATEWAY = `http://127.0.0.1:${portOf(decoyGateway)}`;
    try {
      const fromEnv = capture();
      expect(await runReq(["rpcutil", "ping"], fromEnv.io)).toBe(1);
      expect(decoyHits).toEqual(["POST /v1/rpc"]);
      expect(fromEnv.stderr()).toContain("418");
      const fromFlag = capture();
      expect(await runReq(["--gateway", file.gateway_url, "rpcutil", "ping"], fromFlag.io)).toBe(0);
      expect(fromFlag.stdout()).toMatch(/^node0000\S+\s+OK\s+OK\s+\d+\s+pong=\d+$/m);
      expect(decoyHits).toHaveLength(1);
    } finally {
      delete process.env.CHORIA_EDGE_REQ_GATEWAY;
      decoyHits.length = 0;
    }
  });

  it("an unknown cluster's refusal names the clusters the gateway knows", async () => {
    const c = capture();
    expect(await runReq(["--cluster", "nope", "rpcutil", "ping"], c.io)).toBe(1);
    expect(c.stderr()).toBe(
      "choria-edge req: 404 Unknown cluster: this gateway does not publish into cluster nope; it knows dc1\n",
    );
  });

  it("trace and observe reach the moved federation NATS and the stack's cluster", async () => {
    const traced: string[] = [];
    expect(await runTrace([NODE0, "--json"], { write: (t: string) => traced.push(t) })).toBe(0);
    const report = JSON.parse(traced.join("")) as { cluster: string; hops: unknown[]; status: string };
    expect(report).toMatchObject({ cluster: "dc1", status: `OK (statuscode 0) from ${NODE0}` });
    expect(JSON.stringify(report.hops)).toContain(file.federation.url);
    expect(JSON.stringify(report.hops)).toContain(file.collective_url);

    const observed: string[] = [];
    expect(await runObserve(["--count", "1", "--json"], { write: (t: string) => observed.push(t) })).toBe(0);
    expect(JSON.parse(observed.join(""))).toMatchObject({ from: "b1" });
  });

  it("data and hook send use the stack's NATS, gateway, demo secret and caller key; a delivery sent twice gets its first job", async () => {
    const put = capture();
    expect(await runData(["put", "deploy/env", "staging"], put.io)).toBe(0);
    const got = capture();
    expect(await runData(["get", "deploy/env"], got.io)).toBe(0);
    expect(got.stdout()).toBe("staging\n");

    const first = capture();
    expect(await runHook(["send", "github-push", "--delivery", "d1"], first.io)).toBe(0);
    expect(first.stdout()).toMatch(/^202 Accepted\n/);
    const jobId = (JSON.parse(first.stdout().slice(first.stdout().indexOf("\n"))) as { job_id: string })
      .job_id;
    const again = capture();
    expect(await runHook(["send", "github-push", "--delivery", "d1", "--wait"], again.io)).toBe(0);
    expect(again.stdout()).toMatch(/^202 Accepted\n/);
    expect(again.stdout()).toContain(`"job_id": "${jobId}"`);
    expect(again.stdout()).toContain(`job ${jobId} ended complete`);
    expect(decoyHits).toEqual([]);
  });

  it("a missing key file is named, with what makes one", async () => {
    const missing = join(home, "nobody.json");
    const c = capture();
    expect(await runReq(["--key", missing, "rpcutil", "ping"], c.io)).toBe(2);
    expect(c.stderr()).toBe(
      `choria-edge req: the key file ${missing} does not exist: 'choria-edge req --generate-key --key-id <id> --key ${missing}' makes one (then add the entry it prints to the gateway's keys)\n`,
    );
  });

  it("a second stack from the same home is refused while the first runs", async () => {
    const second = await runCli(["stack", "--nodes", "1", "--brokers", "1"], env).done;
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(
      `choria-edge: a stack from ${home} is already running (pid ${stack.child.pid}, gateway ${file.gateway_url})`,
    );
    expect(existsSync(join(home, "stack.json"))).toBe(true);
  });

  it("Ctrl-C stops it and removes stack.json; a file left by a stack that is gone is ignored, and said so", async () => {
    const text = await readFile(join(home, "stack.json"), "utf8");
    stack.child.kill("SIGINT");
    expect((await stack.done).code).toBe(0);
    expect(existsSync(join(home, "stack.json"))).toBe(false);
    const none = capture();
    expect(await runReq(["rpcutil", "ping"], none.io)).toBe(2);
    expect(none.stderr()).toContain("--key <file> is required (no local stack is running");

    // As a stack killed outright leaves it.
    await writeFile(join(home, "stack.json"), text);
    const stale = capture();
    expect(await runReq(["rpcutil", "ping"], stale.io)).toBe(2);
    expect(stale.stderr()).toContain(
      `choria-edge: ignoring ${join(home, "stack.json")}: the stack that wrote it (pid ${file.pid}) is not running\n`,
    );
  });
});
