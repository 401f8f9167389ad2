// Edge gateway benchmarks (numbers, not pass/fail):
//  (a) the same rpcutil#ping to 1, 100 and 1,000 named nodes, sequentially, through the Node gateway
//      (signed HTTP, ed25519) and from a direct NATS client in this process, alternating in one run: the
//      median and p90 of each, their ratio and the milliseconds the gateway adds;
//  (b) requests per second the Node gateway sustains (1-node requests, several concurrent callers), and
//      the direct client at the same concurrency for reference;
//  (c) Workers: the two connection modes in workerd (wrangler dev): latency and the time spent getting a
//      NATS connection, from the Server-Timing header (bundle sizes are startup.ts's).
// Everything is real and on this machine: federation and collective nats-servers, a broker process, 1,000
// simulated nodes in their own process, the gateway as `choria-edge gateway` in its own process.
// Sizes: BENCH_GATEWAY_RUNS (60 for 1 node, a third of it for 100, a tenth for 1,000), BENCH_RPS_SECONDS (5),
// BENCH_RPS_CONCURRENCY (16); BENCH_QUICK=1 divides runs and seconds by 5. BENCH_GATEWAY_NODE_ARGS: Node
// options for the gateway process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (the profile is written when
// the bench stops it; support/profile-summary.ts summarises it); BENCH_GATEWAY_NODES: the node counts of (a), "1,100,1000"; BENCH_WORKERS=0 leaves
// out (c).
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runGateway } from "../../functions/node.ts";
import { generateFleet } from "../../lib/node/fleet.ts";
import { type RpcPlan, resolveTargets, sendRpc } from "../../lib/results/rpc.ts";
import { loadSigner } from "../../lib/security/choria.ts";
import { generateHttpKey, type SigningKey, signHttpRequest } from "../../lib/security/http/mod.ts";
import type { MessageBus } from "../../lib/transport/bus.ts";
import { connectNats } from "../../lib/transport/node.ts";
import { type BrokerProcess, CLUSTER, spawnBroker } from "../integration/federation/support.ts";
import { type NatsServer, startNatsServer } from "../support/nats-server.ts";
import { testPki } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { startWranglerDev } from "../workerd/wrangler-dev.ts";
import { cpuMs, median, p90, spawnReady, stopChild } from "./support/processes.ts";
import { recordSummary } from "./support/summary.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const quick = process.env.BENCH_QUICK === "1" ? 5 : 1;
const FLEET = 1000;

async function main(): Promise<void> {
  const runs = Math.max(5, Math.floor(Number(process.env.BENCH_GATEWAY_RUNS ?? 60) / quick));
  const rpsSeconds = Math.max(1, Number(process.env.BENCH_RPS_SECONDS ?? 5) / quick);
  const concurrency = Number(process.env.BENCH_RPS_CONCURRENCY ?? 16);
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-bench-gateway-"));
  const children: ChildProcess[] = [];
  const servers: NatsServer[] = [];
  let broker: BrokerProcess | undefined;
  let direct: MessageBus | undefined;
  try {
    const pki = await testPki();
    const [federation, collective] = await Promise.all([
      startNatsServer({ websocket: true, name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    servers.push(federation, collective);
    broker = await spawnBroker("bench1", federation.url, collective.url);

    const caFile = join(dir, "ca.pem");
    await writeFile(caFile, pki.caPem);
    children.push(
      await spawnReady(join(dir, "nodes.ready"), [
        join(ROOT, "cli/main.ts"),
        "simulate",
        "--nodes",
        String(FLEET),
        "--server",
        collective.url,
        "--ca",
        caFile,
      ]),
    );

    const key = await generateHttpKey({
      id: "bench",
      caller: "bench",
      scheme: "ed25519",
      policy: { clusters: [CLUSTER], collectives: ["*"], agents: ["*"], actions: ["*#*"] },
    });
    // Imported once: a caller that signs many requests keeps its key, rather than paying an import each time.
    const privateKey = await crypto.subtle.importKey(
      "jwk",
      key.keyFile.privateKey!,
      { name: "Ed25519" },
      false,
      ["sign"],
    );
    const signing: SigningKey = { id: "bench", scheme: "ed25519", privateKey };
    await Promise.all([
      writeFile(join(dir, "gateway.pem"), pki.gateway.certPem),
      writeFile(join(dir, "gateway-key.pem"), pki.gateway.keyPem),
      writeFile(join(dir, "keys.json"), JSON.stringify({ keys: [key.config] })),
    ]);
    const port = await freePort();
    const gatewayProcess = await spawnReady(
      join(dir, "gateway.ready"),
      [
        import.meta.filename,
        "--gateway",
        "--listen",
        `127.0.0.1:${port}`,
        "--nats-servers",
        federation.url,
        "--clusters",
        `${CLUSTER}=mcollective`,
        "--cert",
        join(dir, "gateway.pem"),
        "--key",
        join(dir, "gateway-key.pem"),
        "--keys",
        join(dir, "keys.json"),
      ],
      (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(/\s+/).filter(Boolean),
    );
    children.push(gatewayProcess);
    const gatewayUrl = `http://127.0.0.1:${port}/v1/rpc`;

    direct = await connectNats({ servers: federation.url, name: "bench-direct" });
    const client = {
      signer: await loadSigner(pki.gateway),
      callerid: "choria=bench.mcollective",
      senderid: "bench.example.net",
    };
    const identities = generateFleet({ count: FLEET, seed: 1 }).map((n) => n.identity);
    const bus = direct;

    const viaGateway = async (count: number, url = gatewayUrl): Promise<Timed> => {
      const body = JSON.stringify({
        cluster: CLUSTER,
        agent: "rpcutil",
        action: "ping",
        nodes: identities.slice(0, count),
      });
      const started = performance.now();
      const headers = await signHttpRequest({
        method: "POST",
        url,
        headers: { "content-type": "application/json" },
        body,
        key: signing,
      });
      const res = await fetch(url, { method: "POST", headers, body });
      const result = (await res.json()) as { summary?: { ok: number } };
      if (res.status !== 200 || result.summary?.ok !== count)
        throw new Error(`gateway: ${res.status} ${JSON.stringify(result).slice(0, 300)}`);
      const timing = res.headers.get("server-timing");
      return {
        ms: performance.now() - started,
        natsMs: serverTiming(timing, "nats"),
        authMs: serverTiming(timing, "auth"),
        rpcMs: serverTiming(timing, "rpc"),
      };
    };
    const viaNats = async (count: number): Promise<Timed> => {
      const plan: RpcPlan = {
        cluster: CLUSTER,
        collective: "mcollective",
        agent: "rpcutil",
        action: "ping",
        data: {},
        filter: {},
        addressing: { kind: "nodes", nodes: identities.slice(0, count) },
        timeoutMs: 10_000,
      };
      const started = performance.now();
      const result = await sendRpc(bus, client, plan, await resolveTargets(bus, client, plan));
      if (result.summary.ok !== count) throw new Error(`direct: ${JSON.stringify(result.summary)}`);
      return { ms: performance.now() - started };
    };

    // Warm both paths: connections, JIT, the certificate verdict caches on the nodes.
    for (let i = 0; i < 10; i++) {
      await viaGateway(1);
      await viaNats(1);
    }
    console.log(
      `${FLEET} simulated nodes, 1 broker process, gateway process on Node ${process.version}; 2 cores shared by all`,
    );
    let oneNode: { gateway: number; direct: number } | undefined;
    console.log("\n(a) one request at a time, all named nodes answer      median ms      p90 ms");
    console.log(
      `${"nodes".padEnd(8)}${"runs".padStart(6)}   ${"gateway".padStart(9)}${"direct".padStart(9)}  ${"gateway".padStart(9)}${"direct".padStart(9)}   ratio  added ms`,
    );
    for (const count of (process.env.BENCH_GATEWAY_NODES ?? "1,100,1000").split(",").map(Number)) {
      const n = Math.max(3, Math.round(runs / (count === 1 ? 1 : count === 100 ? 3 : 10)));
      const gateway: number[] = [];
      const nats: number[] = [];
      const timed: Timed[] = [];
      for (let i = 0; i < n; i++) {
        const viaHttp = await viaGateway(count);
        timed.push(viaHttp);
        gateway.push(viaHttp.ms);
        nats.push((await viaNats(count)).ms);
      }
      const [gm, dm] = [median(gateway), median(nats)];
      if (count === 1) oneNode = { gateway: gm, direct: dm };
      console.log(
        `${String(count).padEnd(8)}${String(n).padStart(6)}   ${gm.toFixed(1).padStart(9)}${dm.toFixed(1).padStart(9)}  ${p90(gateway).toFixed(1).padStart(9)}${p90(nats).toFixed(1).padStart(9)}   ${(gm / dm).toFixed(2).padStart(5)}  ${(gm - dm).toFixed(1).padStart(8)}`,
      );
      // Where the gateway's time went: its Server-Timing, and the rest (client signing, HTTP both ways),
      // beside the floor of this client and server: an unauthenticated GET /healthz.
      const floor: number[] = [];
      for (let i = 0; i < n; i++) {
        const started = performance.now();
        await (await fetch(gatewayUrl.replace("/v1/rpc", "/healthz"))).json();
        floor.push(performance.now() - started);
      }
      const part = (pick: (t: Timed) => number | undefined) => median(timed.map((t) => pick(t) ?? 0));
      const rest = median(timed.map((t) => t.ms - (t.authMs ?? 0) - (t.natsMs ?? 0) - (t.rpcMs ?? 0)));
      console.log(
        `${"".padEnd(14)}gateway: auth ${part((t) => t.authMs).toFixed(1)}, nats ${part((t) => t.natsMs).toFixed(1)}, rpc ${part((t) => t.rpcMs).toFixed(1)}, signing the HTTP request + HTTP ${rest.toFixed(1)} ms (GET /healthz ${median(floor).toFixed(1)} ms)`,
      );
    }

    console.log(`\n(b) throughput, 1-node requests, ${concurrency} concurrent callers for ${rpsSeconds} s`);
    const sustainedRate: Record<string, number> = {};
    let gatewayCpuMs = Number.NaN;
    for (const [name, call] of [
      ["Node gateway (HTTP)", () => viaGateway(1)],
      ["direct NATS client", () => viaNats(1)],
    ] as const) {
      const cpuBefore = cpuMs(gatewayProcess.pid);
      const clientBefore = process.cpuUsage();
      const { rate, latencies } = await sustained(call, concurrency, rpsSeconds * 1000);
      const gatewayCpu = (cpuMs(gatewayProcess.pid) - cpuBefore) / latencies.length;
      // The callers share this process: when it is the one out of CPU, the rate says so.
      const client = process.cpuUsage(clientBefore);
      const clientCpu = (client.user + client.system) / 1000 / latencies.length;
      sustainedRate[name] = rate;
      if (name.startsWith("Node")) gatewayCpuMs = gatewayCpu;
      console.log(
        `${name.padEnd(22)} ${rate.toFixed(0).padStart(6)} req/s   median ${median(latencies).toFixed(1)} ms   caller CPU ${clientCpu.toFixed(2)} ms/request${
          name.startsWith("Node") ? `   gateway CPU ${gatewayCpu.toFixed(2)} ms/request` : ""
        }`,
      );
    }

    // What the gateway's request path cannot go below: the RSA-2048 Choria signature, timed here on the
    // same machine in the same run (CPU of this process, one signature at a time).
    const signCpuBefore = process.cpuUsage();
    for (let i = 0; i < 100; i++)
      await client.signer.sign(`{"requestid":"${i}","message":"${"x".repeat(400)}"}`);
    const signCpu = process.cpuUsage(signCpuBefore);
    const signMs = (signCpu.user + signCpu.system) / 1000 / 100;
    if (oneNode !== undefined)
      recordSummary([
        {
          measure: "gateway, 1-node RPC, added to a direct client's time (p50)",
          figure: `+${(oneNode.gateway - oneNode.direct).toFixed(1)} ms`,
          goal: "≤ 1 ms",
          reference: `gateway ${oneNode.gateway.toFixed(1)} ms vs direct client ${oneNode.direct.toFixed(1)} ms`,
        },
        {
          measure: "gateway CPU per 1-node request",
          figure: `${gatewayCpuMs.toFixed(2)} ms`,
          goal: "≤ 0.6 ms",
          reference: `one RSA-2048 Choria signature ${signMs.toFixed(2)} ms`,
        },
        {
          measure: `gateway 1-node requests/s, ${concurrency} concurrent`,
          figure: `${(sustainedRate["Node gateway (HTTP)"] ?? 0).toFixed(0)}`,
          goal: "≥ the direct client",
          reference: `direct client ${(sustainedRate["direct NATS client"] ?? 0).toFixed(0)}`,
        },
      ]);

    if (process.env.BENCH_WORKERS === "0") return;
    console.log("\n(c) Workers (bundle sizes: startup.ts)");
    const workerRuns = Math.max(5, Math.floor(30 / quick));
    console.log(
      `workerd via wrangler dev, 1-node requests, ${workerRuns} sequential      median ms   NATS connection ms`,
    );
    for (const mode of ["per-request", "durable-object"]) {
      const dev = await startWranglerDev({
        CHORIA_EDGE_GATEWAY_NATS_SERVERS: federation.wsUrl!,
        CHORIA_EDGE_GATEWAY_CLUSTERS: `${CLUSTER}=mcollective`,
        CHORIA_EDGE_GATEWAY_NATS_CONNECTION: mode,
        CHORIA_EDGE_GATEWAY_CERT_PEM: pki.gateway.certPem,
        CHORIA_EDGE_GATEWAY_KEY_PEM: pki.gateway.keyPem,
        CHORIA_EDGE_GATEWAY_KEYS_JSON: await readFile(join(dir, "keys.json"), "utf8"),
      });
      try {
        const url = `${dev.url}/v1/rpc`;
        for (let i = 0; i < 5; i++) await viaGateway(1, url);
        const timed: Timed[] = [];
        for (let i = 0; i < workerRuns; i++) timed.push(await viaGateway(1, url));
        console.log(
          `  ${mode.padEnd(58)}${median(timed.map((t) => t.ms))
            .toFixed(1)
            .padStart(8)}${median(timed.map((t) => t.natsMs ?? Number.NaN))
            .toFixed(1)
            .padStart(14)}`,
        );
      } finally {
        await dev.stop();
      }
    }
  } finally {
    await direct?.close().catch(() => {});
    for (const child of children.reverse()) await stopChild(child);
    await broker?.kill();
    await Promise.all(servers.map((s) => s.dispose()));
    await rm(dir, { recursive: true, force: true });
  }
}

interface Timed {
  ms: number;
  natsMs?: number | undefined;
  authMs?: number | undefined;
  rpcMs?: number | undefined;
}

async function sustained(
  call: () => Promise<Timed>,
  concurrency: number,
  durationMs: number,
): Promise<{ rate: number; latencies: number[] }> {
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() - started < durationMs) latencies.push((await call()).ms);
    }),
  );
  return { rate: latencies.length / ((performance.now() - started) / 1000), latencies };
}

function serverTiming(header: string | null, name: string): number | undefined {
  const match = header && new RegExp(`(?:^|,\\s*)${name};dur=([\\d.]+)`).exec(header);
  return match ? Number(match[1]) : undefined;
}

// Last, so that the constants above exist when main runs.
if (process.argv[2] === "--gateway") {
  process.exitCode = await runGateway(process.argv.slice(3));
} else {
  await main();
}
