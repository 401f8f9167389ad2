// 10,000 simulated nodes (one `choria-edge simulate` process; BENCH_DISCOVERY_SIMULATORS=n splits the fleet
// over n, as a real fleet is many hosts: on 2 shared cores two did not beat one once a directed copy cost
// the simulator a byte comparison rather than a decode) behind two brokers and the Node gateway
// (in this process; the brokers are processes of their own), rpcutil#ping two ways: (a) broadcast with
// `expect`, (b) discovery, then directed requests to every node found. Prints the median wall time of each
// and where it went: the gateway's Server-Timing (discovery, rpc), the simulator's CPU, both brokers' CPU
// and this process's (gateway, HTTP client); the rest is NATS and waiting. Then the stages along the
// request's critical path, from arrival times seen by a passive listener on both NATS servers (each round:
// the gateway until its request is on the federation, the brokers until the first copy reaches the nodes
// or, directed, the last; the nodes until their last reply; the brokers until it is back on the
// federation; the gateway until the next round or the response), and the gateway + brokers share of it.
// Sizes: BENCH_DISCOVERY_NODES (10000), BENCH_DISCOVERY_RUNS (5); BENCH_QUICK=1 divides the nodes by 10.

import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";
import { type BigFleet, startBigFleet } from "../integration/gateway/big-fleet.ts";
import { CLUSTER, COLLECTIVE } from "../integration/gateway/support.ts";
import { cpuMs, stopChild } from "./support/processes.ts";
import type { Times } from "./support/stage-listener.ts";
import { recordSummary } from "./support/summary.ts";

const quick = process.env.BENCH_QUICK === "1" ? 10 : 1;
const NODES = Math.floor(Number(process.env.BENCH_DISCOVERY_NODES ?? 10_000) / quick);
const RUNS = Number(process.env.BENCH_DISCOVERY_RUNS ?? 5);
const SIMULATORS = Number(process.env.BENCH_DISCOVERY_SIMULATORS ?? 1);

interface Sample {
  wallMs: number;
  discoveryMs: number;
  rpcMs: number;
  simulatorCpuMs: number;
  brokersCpuMs: number;
  selfCpuMs: number;
  stages: Record<Stage, number>;
}

const STAGES = ["gateway", "brokers", "nodes", "NATS + waiting"] as const;
type Stage = (typeof STAGES)[number];
/**
 * Arrival times of the messages a request makes on its way, from the listener process: the gateway's
 * federated requests and the replies the brokers relay to it (federation server), the brokers' copies to
 * the nodes and the nodes' replies to the brokers (collective server).
 */
class StageWatch {
  private constructor(readonly child: ChildProcess) {}

  static async start(fleet: BigFleet): Promise<StageWatch> {
    const child = fork(
      join(import.meta.dirname, "support/stage-listener.ts"),
      [fleet.urls.federation, fleet.urls.collective, CLUSTER, COLLECTIVE],
      { execArgv: ["--import", "tsx"] },
    );
    const watch = new StageWatch(child);
    await watch.#ask("start", "ready");
    return watch;
  }

  #ask<T>(message: string | undefined, answer?: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: unknown) => {
        if (answer !== undefined && reply !== answer) return;
        this.child.off("exit", onExit);
        this.child.off("message", onMessage);
        resolve(reply as T);
      };
      const onExit = () => reject(new Error("the stage listener exited"));
      this.child.on("message", onMessage);
      this.child.once("exit", onExit);
      if (message !== "start") this.child.send(message ?? "times");
    });
  }

  reset(): Promise<void> {
    return this.#ask("reset", "reset");
  }

  /**
   * The request's time along its critical path, round by round (discovery, then the directed round): the
   * gateway until its request is out, the brokers until their first copy reaches the nodes (the last, for
   * a directed round's fan-out), the nodes until their last reply, the brokers until that reply is relayed,
   * the gateway until the next round or the response. A round the listener saw nothing of is NATS and
   * waiting.
   */
  async stages(started: number, ended: number): Promise<Record<Stage, number>> {
    const t = await this.#ask<Times>(undefined);
    const split: Record<Stage, number> = { gateway: 0, brokers: 0, nodes: 0, "NATS + waiting": 0 };
    // The first federated request opens a round; a directed round's later packets go out together.
    const rounds = t.request.filter((at, i) => i === 0 || at - (t.request[i - 1] ?? at) > 50);
    let from = started;
    rounds.forEach((out, i) => {
      const end = rounds[i + 1] ?? ended;
      const within = (times: number[]) => times.filter((at) => at >= out && at < end);
      const copies = within(t.copy);
      const fanOut = copies.length > 1 ? copies.at(-1) : copies[0];
      const lastReply = within(t.reply).at(-1);
      const lastRelayed = within(t.relayed).at(-1);
      if (fanOut === undefined || lastReply === undefined || lastRelayed === undefined) {
        split["NATS + waiting"] += end - from;
      } else {
        split.gateway += out - from + (end - lastRelayed);
        split.brokers += fanOut - out + Math.max(0, lastRelayed - lastReply);
        split.nodes += Math.max(0, lastReply - fanOut);
      }
      from = end;
    });
    return split;
  }

  async close(): Promise<void> {
    this.child.send("stop");
    await stopChild(this.child);
  }
}

/** Milliseconds since the epoch, sub-millisecond: comparable with the listener process's. */
const epochNow = () => performance.timeOrigin + performance.now();

async function measure(fleet: BigFleet, watch: StageWatch, broadcast: boolean): Promise<Sample> {
  const body = broadcast
    ? { agent: "rpcutil", action: "ping", mode: "broadcast", expect: NODES, timeout: 20 }
    : { agent: "rpcutil", action: "ping", discovery_timeout: 10, timeout: 20 };
  const brokersCpu = () => fleet.brokers.reduce((sum, broker) => sum + cpuMs(broker.child.pid), 0);
  const brokersBefore = brokersCpu();
  const simulatorCpu = () => fleet.simulatorPids().reduce((sum, pid) => sum + cpuMs(pid), 0);
  const simulatorBefore = simulatorCpu();
  const selfBefore = process.cpuUsage();
  await watch.reset();
  const started = epochNow();
  const response = await fleet.post(body, broadcast ? fleet.keys.token : fleet.keys.admin);
  const answer = (await response.json()) as { summary?: { ok: number } };
  const ended = epochNow();
  const wallMs = ended - started;
  if (response.status !== 200 || answer.summary?.ok !== NODES)
    throw new Error(`${broadcast ? "broadcast" : "discovery"}: ${response.status} ${JSON.stringify(answer)}`);
  const self = process.cpuUsage(selfBefore);
  const timing = response.headers.get("server-timing");
  return {
    wallMs,
    discoveryMs: serverTiming(timing, "discovery") ?? 0,
    rpcMs: serverTiming(timing, "rpc") ?? 0,
    simulatorCpuMs: simulatorCpu() - simulatorBefore,
    brokersCpuMs: brokersCpu() - brokersBefore,
    selfCpuMs: (self.user + self.system) / 1000,
    stages: await watch.stages(started, ended),
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
  return `wall ${m((s) => s.wallMs)} ms (discovery ${m((s) => s.discoveryMs)}, rpc ${m((s) => s.rpcMs)}); CPU: simulator ${m((s) => s.simulatorCpuMs)} ms, brokers ${m((s) => s.brokersCpuMs)} ms, gateway ${m((s) => s.selfCpuMs)} ms`;
}

/** The critical path's stages (medians), and the gateway + brokers share of the wall time. */
function stageSplit(samples: Sample[]): string {
  const parts = STAGES.map((stage) => `${stage} ${median(samples.map((s) => s.stages[stage])).toFixed(0)}`);
  return `${parts.join(", ")} ms; gateway + brokers ${(100 * gatewayBrokerShare(samples)).toFixed(0)}%`;
}

function gatewayBrokerShare(samples: Sample[]): number {
  return median(samples.map((s) => (s.stages.gateway + s.stages.brokers) / s.wallMs));
}

async function main(): Promise<void> {
  const fleet = await startBigFleet(NODES, SIMULATORS);
  const watch = await StageWatch.start(fleet);
  try {
    await measure(fleet, watch, false);
    const broadcast: Sample[] = [];
    const discovery: Sample[] = [];
    for (let run = 0; run < RUNS; run++) {
      broadcast.push(await measure(fleet, watch, true));
      discovery.push(await measure(fleet, watch, false));
    }
    console.log(
      `\nrpcutil#ping to ${NODES} simulated nodes (${SIMULATORS} simulator processes) through the Node gateway and 2 brokers, ${RUNS} runs`,
    );
    console.log(`  broadcast + expect:     ${describe(broadcast)}`);
    console.log(`  discovery + directed:   ${describe(discovery)}`);
    console.log("critical path (NATS arrival times):");
    console.log(`  broadcast + expect:     ${stageSplit(broadcast)}`);
    console.log(`  discovery + directed:   ${stageSplit(discovery)}`);
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
      {
        measure: `${NODES} nodes, gateway + brokers share of the critical path`,
        figure: `${(100 * gatewayBrokerShare(broadcast)).toFixed(0)}% / ${(100 * gatewayBrokerShare(discovery)).toFixed(0)}%`,
        goal: "≤ 20%",
        reference: "broadcast / discovery + directed",
      },
    ]);
  } finally {
    await watch.close();
    await fleet.stop();
  }
}

await main();
