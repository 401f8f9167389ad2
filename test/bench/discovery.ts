// 10,000 simulated nodes (one `choria-edge simulate` process) behind two brokers and the Node gateway
// (in this process, beside the brokers), rpcutil#ping two ways: (a) broadcast with `expect`, (b)
// discovery, then directed requests to every node found. Prints the median wall time of each and where
// it went: the gateway's Server-Timing (discovery, rpc), the simulator's CPU, and this process's CPU
// (gateway, both brokers, the HTTP client); the rest is NATS and waiting.
// Sizes: BENCH_DISCOVERY_NODES (10000), BENCH_DISCOVERY_RUNS (5); BENCH_QUICK=1 divides the nodes by 10.
import { type BigFleet, startBigFleet } from "../integration/gateway/big-fleet.ts";
import { cpuMs } from "./support/processes.ts";
import { recordSummary } from "./support/summary.ts";

const quick = process.env.BENCH_QUICK === "1" ? 10 : 1;
const NODES = Math.floor(Number(process.env.BENCH_DISCOVERY_NODES ?? 10_000) / quick);
const RUNS = Number(process.env.BENCH_DISCOVERY_RUNS ?? 5);

interface Sample {
  wallMs: number;
  discoveryMs: number;
  rpcMs: number;
  simulatorCpuMs: number;
  selfCpuMs: number;
}

async function measure(fleet: BigFleet, broadcast: boolean): Promise<Sample> {
  const body = broadcast
    ? { agent: "rpcutil", action: "ping", mode: "broadcast", expect: NODES, timeout: 20 }
    : { agent: "rpcutil", action: "ping", discovery_timeout: 10, timeout: 20 };
  const simulatorBefore = cpuMs(fleet.simulatorPid());
  const selfBefore = process.cpuUsage();
  const started = performance.now();
  const response = await fleet.post(body, broadcast ? fleet.keys.token : fleet.keys.admin);
  const answer = (await response.json()) as { summary?: { ok: number } };
  const wallMs = performance.now() - started;
  if (response.status !== 200 || answer.summary?.ok !== NODES)
    throw new Error(`${broadcast ? "broadcast" : "discovery"}: ${response.status} ${JSON.stringify(answer)}`);
  const self = process.cpuUsage(selfBefore);
  const timing = response.headers.get("server-timing");
  return {
    wallMs,
    discoveryMs: serverTiming(timing, "discovery") ?? 0,
    rpcMs: serverTiming(timing, "rpc") ?? 0,
    simulatorCpuMs: cpuMs(fleet.simulatorPid()) - simulatorBefore,
    selfCpuMs: (self.user + self.system) / 1000,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function serverTiming(header: string | null, name: string): number | undefined {
  const match = header && new RegExp(`(?:^|,\\s*)${name};dur=([\\d.]+)`).exec(header);
  return match ? Number(match[1]) : undefined;
}

function describe(samples: Sample[]): string {
  const m = (pick: (s: Sample) => number) => median(samples.map(pick)).toFixed(0);
  return `wall ${m((s) => s.wallMs)} ms (discovery ${m((s) => s.discoveryMs)}, rpc ${m((s) => s.rpcMs)}); CPU: simulator ${m((s) => s.simulatorCpuMs)} ms, gateway+brokers ${m((s) => s.selfCpuMs)} ms`;
}

async function main(): Promise<void> {
  const fleet = await startBigFleet(NODES);
  try {
    await measure(fleet, false);
    const broadcast: Sample[] = [];
    const discovery: Sample[] = [];
    for (let run = 0; run < RUNS; run++) {
      broadcast.push(await measure(fleet, true));
      discovery.push(await measure(fleet, false));
    }
    console.log(
      `\nrpcutil#ping to ${NODES} simulated nodes through the Node gateway and 2 brokers, ${RUNS} runs`,
    );
    console.log(`  broadcast + expect:     ${describe(broadcast)}`);
    console.log(`  discovery + directed:   ${describe(discovery)}`);
    recordSummary([
      {
        measure: `${NODES} nodes, broadcast + expect, median`,
        figure: `${median(broadcast.map((s) => s.wallMs)).toFixed(0)} ms`,
        goal: "≤ 1.0 s",
        reference: `simulator CPU ${median(broadcast.map((s) => s.simulatorCpuMs)).toFixed(0)} ms`,
      },
      {
        measure: `${NODES} nodes, discovery + directed, median`,
        figure: `${median(discovery.map((s) => s.wallMs)).toFixed(0)} ms`,
        goal: "≤ 2.0 s",
        reference: `discovery ${median(discovery.map((s) => s.discoveryMs)).toFixed(0)} ms, rpc ${median(discovery.map((s) => s.rpcMs)).toFixed(0)} ms`,
      },
    ]);
  } finally {
    await fleet.stop();
  }
}

await main();
