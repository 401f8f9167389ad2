// `choria-edge stack --topology ha` as an operator runs it: the production-shaped topology generated into
// $CHORIA_EDGE_HOME/topology, every service connected as its role, one signed request answered by every
// node through it, the jobs bucket on three replicas, and nothing left running after Ctrl-C.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../infra/ports.ts";
import type { StackFile } from "../../../infra/stack-file.ts";
import type { Topology } from "../../../infra/topology.ts";
import { runCli, untilReady } from "./cli-support.ts";

const NODES = 6;

/** The processes whose command line names `home`: every server and service of the stack. */
async function processesUnder(home: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(home)) found.push(Number(entry));
  }
  return found;
}

describe("choria-edge stack --topology ha", () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let stack: ReturnType<typeof runCli>;
  let startupMs = 0;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "choria-edge-stack-ha-"));
    env = { ...process.env, CHORIA_EDGE_HOME: home };
    for (const name of ["CHORIA_EDGE_REQ_GATEWAY", "CHORIA_EDGE_REQ_KEY", "CHORIA_EDGE_REQ_CLUSTER"])
      delete env[name];
    const startedAt = Date.now();
    stack = runCli(
      [
        "stack",
        "--topology",
        "ha",
        "--nodes",
        String(NODES),
        "--gateway-port",
        String(await freePort()),
        "--metrics-port",
        String(await freePort()),
      ],
      env,
    );
    await untilReady(stack, 150_000);
    startupMs = Date.now() - startedAt;
    console.log(`stack --topology ha --nodes ${NODES}: Ready. after ${startupMs} ms`);
  }, 180_000);

  afterAll(async () => {
    if (stack !== undefined && stack.child.exitCode === null) stack.child.kill("SIGKILL");
    for (const pid of await processesUnder(home)) process.kill(pid, "SIGKILL");
    await rm(home, { recursive: true, force: true });
  }, 30_000);

  it("writes the topology's servers and the gateway role's credentials into stack.json", async () => {
    const file = JSON.parse(await readFile(join(home, "stack.json"), "utf8")) as StackFile;
    const topology = JSON.parse(await readFile(join(home, "topology", "topology.json"), "utf8")) as Topology;
    expect(file.topology).toEqual({
      dir: join(home, "topology"),
      ca: topology.caFile,
      federation_urls: topology.federation.urls,
      collective_urls: topology.members[0]?.urls,
      gateway: {
        nkey_seed_file: topology.roles.gateway.seedFile,
        tls_cert: topology.roles.gateway.certFile,
        tls_key: topology.roles.gateway.keyFile,
        inbox_prefix: "_INBOX_gateway",
      },
    });
    expect(topology.federation.urls).toHaveLength(3);
    expect(file.broker_metrics).toHaveLength(2);
    expect(stack.output()).toContain("trace, observe and data log in as the gateway role by default");
  });

  it("answers a signed request from every node, and keeps the jobs and data buckets on three replicas", async () => {
    const req = runCli(["req", "--json", "rpcutil", "ping"], env);
    const { code, stdout, stderr } = await req.done;
    expect(code, stderr).toBe(0);
    const answer = JSON.parse(stdout) as { replies: { identity: string; statusmsg: string }[] };
    expect(answer.replies.map((r) => r.identity).sort()).toEqual(
      Array.from({ length: NODES }, (_, i) => `node${String(i).padStart(4, "0")}.mcollective.example.net`),
    );
    expect(answer.replies.every((r) => r.statusmsg === "OK")).toBe(true);

    // The demo trigger's run writes to the data bucket, which the gateway makes on first use.
    const hook = await runCli(["hook", "send", "github-push", "--wait"], env).done;
    expect(hook.code, hook.stderr).toBe(0);
    // The trigger's job runs as its own caller id, whose replies the gateway's role must be allowed.
    const job = JSON.parse(hook.stdout.slice(hook.stdout.lastIndexOf("\n{\n") + 1)) as {
      state: string;
      counts: { ok: number };
    };
    expect(job).toMatchObject({ state: "complete", counts: { ok: 2 } });

    const topology = JSON.parse(await readFile(join(home, "topology", "topology.json"), "utf8")) as Topology;
    for (const server of topology.federation.servers) {
      const jsz = (await (
        await fetch(`http://127.0.0.1:${server.monitorPort}/jsz?streams=true&config=true`)
      ).json()) as {
        account_details?: { stream_detail?: { name: string; config: { num_replicas: number } }[] }[];
      };
      const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
      const kv = streams.filter((s) => s.name.startsWith("KV_"));
      expect(kv.map((s) => s.name)).toEqual(
        expect.arrayContaining([`KV_${topology.buckets.jobs}`, `KV_${topology.buckets.data}`]),
      );
      for (const stream of streams)
        expect([stream.name, stream.config.num_replicas]).toEqual([stream.name, 3]);
    }
  }, 60_000);

  it("trace, observe and data reach the TLS servers with no flags, as the gateway role from stack.json", async () => {
    const node = "node0000.mcollective.example.net";
    const [trace, observe, put] = await Promise.all([
      runCli(["trace", node, "--json"], env).done,
      runCli(["observe", "--count", "1", "--json"], env).done,
      runCli(["data", "put", "ops/check", "from-the-cli"], env).done,
    ]);
    expect(trace.code, trace.stderr).toBe(0);
    expect(JSON.parse(trace.stdout)).toMatchObject({ identity: node });
    expect(observe.code, observe.stderr).toBe(0);
    expect(JSON.parse(observe.stdout.split("\n")[0] ?? "")).toHaveProperty("from");
    expect(put.code, put.stderr).toBe(0);
    const got = await runCli(["data", "get", "ops/check"], env).done;
    expect([got.code, got.stdout]).toEqual([0, "from-the-cli\n"]);
  }, 60_000);

  it("stops every server and service on SIGINT", async () => {
    // 6 nats-servers, 2 brokers, the simulated nodes, the gateway and the collector.
    expect((await processesUnder(home)).length).toBe(11);
    stack.child.kill("SIGINT");
    const { code } = await stack.done;
    expect(code).toBe(0);
    expect(await processesUnder(home)).toEqual([]);
    await expect(readFile(join(home, "stack.json"), "utf8")).rejects.toThrow();
  }, 60_000);

  it("starts again on the topology it made, not a new one", async () => {
    const ca = join(home, "topology", "tls", "ca.pem");
    const before = await readFile(ca, "utf8");
    stack = runCli(
      ["stack", "--topology", "ha", "--nodes", "2", "--gateway-port", String(await freePort())],
      env,
    );
    await untilReady(stack, 120_000);
    expect(await readFile(ca, "utf8")).toBe(before);
    stack.child.kill("SIGINT");
    expect((await stack.done).code).toBe(0);
  }, 150_000);
});
