// How far the simulator is from a real Choria server (numbers, not pass/fail): the same signed gateway
// request, rpcutil#ping to named nodes, sent alternately to N go-choria servers (one process each) and to
// N simulated nodes (one `choria-edge simulate` process), through one broker process. Prints the median
// latency of each and the node side's CPU per reply.
// Sizes: BENCH_REALISM_NODES (5), BENCH_REALISM_RUNS (100); BENCH_QUICK=1 divides runs by 5.
// go-choria comes from infra/peers.sh.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ensureDemoPki } from "../../infra/pki.ts";
import type { NodeIdentity } from "../../lib/node/fleet.ts";
import { type BrokerProcess, spawnBroker } from "../integration/federation/support.ts";
import { signedInit } from "../integration/gateway/support.ts";
import {
  CLUSTER,
  COLLECTIVE,
  type InteropGateway,
  startInteropGateway,
} from "../integration/interop/support.ts";
import { type ChoriaServer, GO_CHORIA_VERSION, startChoriaServer } from "../support/choria.ts";
import { type NatsServer, startNatsServer } from "../support/nats-server.ts";
import { cpuMs, median, p90, spawnReady, stopChild } from "./support/processes.ts";
import { recordSummary } from "./support/summary.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const quick = process.env.BENCH_QUICK === "1" ? 5 : 1;
const NODES = Number(process.env.BENCH_REALISM_NODES ?? 5);
const RUNS = Math.max(5, Math.floor(Number(process.env.BENCH_REALISM_RUNS ?? 100) / quick));
const FACTS = { role: "web", country: "de", cores: 8 };

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-bench-realism-"));
  const servers: NatsServer[] = [];
  const real: ChoriaServer[] = [];
  let simulator: ChildProcess | undefined;
  let broker: BrokerProcess | undefined;
  let edge: InteropGateway | undefined;
  try {
    const realNames = Array.from({ length: NODES }, (_, i) => `go${i + 1}.example.net`);
    const simNames = Array.from({ length: NODES }, (_, i) => `sim${i + 1}.example.net`);
    const pki = await ensureDemoPki(join(dir, "pki"), { nodes: realNames });
    const [federation, collective] = await Promise.all([
      startNatsServer({ name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    servers.push(federation, collective);
    broker = await spawnBroker("realism", federation.url, collective.url);
    real.push(
      ...(await Promise.all(
        realNames.map((identity) =>
          startChoriaServer(
            { identity, facts: FACTS, classes: ["apache"] },
            { natsUrl: collective.url, pki },
          ),
        ),
      )),
    );
    const fleet: NodeIdentity[] = simNames.map((identity) => ({
      identity,
      collective: COLLECTIVE,
      facts: FACTS,
      classes: ["apache"],
      agents: ["rpcutil", "discovery"],
    }));
    await writeFile(join(dir, "fleet.json"), JSON.stringify(fleet));
    simulator = await spawnReady(join(dir, "nodes.ready"), [
      join(ROOT, "cli/main.ts"),
      "simulate",
      "--fleet",
      join(dir, "fleet.json"),
      "--server",
      collective.url,
      "--ca",
      pki.ca.certPath,
    ]);
    edge = await startInteropGateway({ federation, pki });

    const gateway = edge;
    const ask = async (nodes: string[]) => {
      const url = `${gateway.gateway.url}/v1/rpc`;
      const init = await signedInit(
        url,
        { cluster: CLUSTER, agent: "rpcutil", action: "ping", nodes, timeout: 5 },
        gateway.keys.admin,
      );
      const started = performance.now();
      const res = await fetch(url, init);
      const body = (await res.json()) as { summary?: { ok: number } };
      const ms = performance.now() - started;
      if (res.status !== 200 || body.summary?.ok !== nodes.length)
        throw new Error(`${res.status}: ${JSON.stringify(body)}`);
      return ms;
    };
    // Every real server answers once before timing: connections, caches and the first certificate check.
    for (let i = 0; i < 10; i++) {
      await ask(realNames);
      await ask(simNames);
    }
    const realPids = real.map((server) => server.child.pid);
    const realCpu = () => realPids.reduce<number>((n, pid) => n + cpuMs(pid), 0);
    const latency = { real: [] as number[], simulated: [] as number[] };
    // CPU over the whole loop: /proc counts in 10 ms ticks, too coarse for one request. Each side idles
    // while the other is asked, so its share includes its background work (go-choria's timers).
    const before = { real: realCpu(), simulated: cpuMs(simulator.pid) };
    for (let i = 0; i < RUNS; i++) {
      latency.real.push(await ask(realNames));
      latency.simulated.push(await ask(simNames));
    }
    const cpu = { real: realCpu() - before.real, simulated: cpuMs(simulator.pid) - before.simulated };
    const perReply = (ms: number) => (ms * 1000) / (RUNS * NODES);
    console.log(
      `\nrpcutil#ping to ${NODES} named nodes through the Node gateway and 1 broker, ${RUNS} runs each, alternating`,
    );
    console.log(`${"".padEnd(34)}median ms   p90 ms   node CPU µs/reply`);
    for (const kind of ["real", "simulated"] as const) {
      const name = kind === "real" ? `go-choria ${GO_CHORIA_VERSION} servers` : "simulated nodes (1 process)";
      console.log(
        `${name.padEnd(34)}${median(latency[kind]).toFixed(1).padStart(9)}${p90(latency[kind]).toFixed(1).padStart(9)}${perReply(cpu[kind]).toFixed(0).padStart(20)}`,
      );
    }
    recordSummary([
      {
        measure: `simulated vs real node, CPU per reply`,
        figure: `${perReply(cpu.simulated).toFixed(0)} µs`,
        goal: "",
        reference: `go-choria server ${perReply(cpu.real).toFixed(0)} µs`,
      },
      {
        measure: `gateway ping to ${NODES} nodes, median`,
        figure: `${median(latency.simulated).toFixed(1)} ms simulated`,
        goal: "",
        reference: `${median(latency.real).toFixed(1)} ms to go-choria servers`,
      },
    ]);
  } finally {
    await edge?.gateway.close();
    if (simulator) await stopChild(simulator);
    await Promise.allSettled(real.map((server) => server.stop()));
    await broker?.kill("SIGTERM");
    await Promise.allSettled(servers.map((server) => server.dispose()));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
