// Federation broker benchmarks (numbers, not pass/fail):
//  (a) sequential round trips to 3 responders: directly on one nats-server; through 2 bare relay
//      processes; through 2 of our broker processes and through 2 go-choria federation brokers between a
//      federation and a collective nats-server; overhead per round trip and each broker's CPU per message.
//  (b) fan-out throughput: requests in and copies out per second with one of our instances, with two, and
//      with one go-choria federation broker, and each of our instances' share; our CPU per copy; and a
//      process that only publishes the same copies through nats.js (support/publish-loop.ts), the floor.
// go-choria comes from infra/peers.sh (run it first; npm test does).
// Sizes: BENCH_ROUNDTRIPS (10000), BENCH_FANOUT_MESSAGES (20000), BENCH_FANOUT_TARGETS (10),
// BENCH_FANOUT_WINDOW (200 requests undelivered at most), BENCH_PAYLOAD_BYTES (600); BENCH_QUICK=1 divides
// the counts by 10; BENCH_SKIP_FANOUT=1 runs only (a). "!" marks a fan-out run that did not complete.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureDemoPki } from "../../infra/pki.ts";
import type { StatsDocument } from "../../lib/federation/stats.ts";
import type { MessageBus } from "../../lib/transport/bus.ts";
import {
  type BrokerProcess,
  bus,
  CLUSTER,
  COLLECTIVE,
  federatedRequest,
  httpText,
  replySubjectFor,
  requestId,
  spawnBroker,
  startResponders,
} from "../integration/federation/support.ts";
import { choriaBinary, GO_CHORIA_VERSION, startChoriaFederationBroker } from "../support/choria.ts";
import { type NatsServer, startNatsServer } from "../support/nats-server.ts";
import { cpuMs } from "./support/processes.ts";
import { recordSummary } from "./support/summary.ts";

const cpuSeconds = (pid: number | undefined) => cpuMs(pid) / 1000;

const quick = process.env.BENCH_QUICK === "1" ? 10 : 1;
const size = (name: string, fallback: number) =>
  Math.max(1, Math.floor(Number(process.env[name] ?? fallback) / quick));
const ROUNDTRIPS = size("BENCH_ROUNDTRIPS", 10_000);
const FANOUT_MESSAGES = size("BENCH_FANOUT_MESSAGES", 20_000);
const FANOUT_TARGETS = Number(process.env.BENCH_FANOUT_TARGETS ?? 10);
const FANOUT_WINDOW = Number(process.env.BENCH_FANOUT_WINDOW ?? 200);
const PAYLOAD_BYTES = Number(process.env.BENCH_PAYLOAD_BYTES ?? 600);
const NODES = ["node1.example.net", "node2.example.net", "node3.example.net"];
const BROADCAST = `${COLLECTIVE}.broadcast.agent.rpcutil`;
const encoder = new TextEncoder();

type Mode = "direct" | "relayed" | "brokered";

function packet(rid: string, mode: Mode | "fanout", targets: string[] = [BROADCAST]): Uint8Array {
  const base = federatedRequest(rid, targets);
  base.data = "Q".repeat(Math.ceil(PAYLOAD_BYTES / 4) * 4);
  if (mode === "direct" || mode === "relayed") delete base.headers.federation;
  if (mode === "relayed") base.headers["reply-to"] = "bench.relay.replies";
  return encoder.encode(JSON.stringify(base));
}

const ENTRY_SUBJECT: Record<Mode, string> = {
  direct: BROADCAST,
  relayed: "bench.relay.requests",
  brokered: `choria.federation.${CLUSTER}.federation`,
};

/** Sends `count` requests one after the other, each waiting for all three replies. Returns seconds. */
async function roundTrips(client: MessageBus, mode: Mode, count: number): Promise<number> {
  let pending = 0;
  let wake: () => void = () => {};
  let current = "";
  // Relayed replies all arrive on one subject; the others carry the request id in theirs.
  const subject = mode === "relayed" ? "bench.relay.client" : `${COLLECTIVE}.reply.*.*`;
  const sub = client.subscribe(subject, (msg) => {
    if (mode !== "relayed" && !msg.subject.endsWith(current)) return;
    if (--pending === 0) wake();
  });
  await client.flush();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    current = requestId();
    pending = NODES.length;
    const done = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const timer = setTimeout(() => wake(), 5000);
    client.publish(ENTRY_SUBJECT[mode], packet(current, mode));
    await done;
    clearTimeout(timer);
    if (pending > 0)
      throw new Error(`${mode} round trip ${i}: ${pending} replies missing for ${replySubjectFor(current)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  sub.unsubscribe();
  return seconds;
}

/** Runs one of the scripts in support/ as its own process, its stdout piped here. */
function spawnSupport(script: string, args: string[]): ChildProcess & { stdout: NodeJS.ReadableStream } {
  return spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "support", script), ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
}

function spawnRelay(federationUrl: string, collectiveUrl: string): Promise<ChildProcess> {
  const child = spawnSupport("relay.ts", [federationUrl, collectiveUrl, BROADCAST]);
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`relay exited (${code})`)));
    child.stdout.once("data", () => resolve(child));
  });
}

async function stats(broker: BrokerProcess): Promise<StatsDocument> {
  return JSON.parse(await httpText(`${broker.httpUrl}/stats`)) as StatsDocument;
}

/** Counts copies arriving at the collective; `until(n)` resolves once n have arrived. */
class Sink {
  count = 0;
  /** Size of the last copy that arrived: what a broker publishes per target. */
  lastBytes = 0;
  private target = Number.POSITIVE_INFINITY;
  private wake: () => void = () => {};

  arrived(bytes: number): void {
    this.lastBytes = bytes;
    if (++this.count >= this.target) {
      this.target = Number.POSITIVE_INFINITY;
      this.wake();
    }
  }

  until(n: number, timeoutMs = 10_000): Promise<boolean> {
    if (this.count >= n) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.target = n;
      this.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}

/**
 * Publishes FANOUT_MESSAGES requests of FANOUT_TARGETS targets each, keeping at most FANOUT_WINDOW of them
 * undelivered (as clients waiting for replies do), and times until every copy has arrived.
 */
async function fanOut(client: MessageBus, sink: Sink, brokers: BrokerProcess[]) {
  const before = await Promise.all(brokers.map(stats));
  const cpuBefore = brokers.reduce((n, b) => n + cpuSeconds(b.child.pid), 0);
  const base = sink.count;
  const subject = `choria.federation.${CLUSTER}.federation`;
  let n = 0;
  const targetsFor = () =>
    Array.from(
      { length: FANOUT_TARGETS },
      (_, t) => `${COLLECTIVE}.node.n${(n * FANOUT_TARGETS + t) % 50_000}`,
    );
  const started = performance.now();
  let stalled = false;
  while (n < FANOUT_MESSAGES && !stalled) {
    const delivered = Math.floor((sink.count - base) / FANOUT_TARGETS);
    const end = Math.min(FANOUT_MESSAGES, delivered + FANOUT_WINDOW);
    for (; n < end; n++) client.publish(subject, packet(requestId(), "fanout", targetsFor()));
    stalled = !(await sink.until(base + (n - FANOUT_WINDOW / 2) * FANOUT_TARGETS));
  }
  const complete = await sink.until(base + FANOUT_MESSAGES * FANOUT_TARGETS);
  const seconds = (performance.now() - started) / 1000;
  const cpu = brokers.reduce((n, b) => n + cpuSeconds(b.child.pid), 0) - cpuBefore;
  const after = await Promise.all(brokers.map(stats));
  const received = after.map((doc, i) => doc.federation.received - before[i]!.federation.received);
  const dropped: Record<string, number> = {};
  after.forEach((doc, i) => {
    const was = { ...before[i]!.dropped, ...before[i]!.refused } as Record<string, number | undefined>;
    for (const [reason, n] of [...Object.entries(doc.dropped), ...Object.entries(doc.refused)]) {
      const delta = (n ?? 0) - (was[reason] ?? 0);
      if (delta > 0) dropped[reason] = (dropped[reason] ?? 0) + delta;
    }
  });
  const lost = Object.entries(dropped).map(([reason, n]) => `${reason} ${n}`);
  return {
    seconds,
    received,
    delivered: sink.count - base,
    dropped: lost.length === 0 ? "0" : lost.join(", "),
    complete: complete && !stalled,
    cpu,
  };
}

/**
 * The same copies published by a process that does nothing else (support/publish-loop.ts), FANOUT_WINDOW
 * requests' worth per tick: what nats.js costs per copy here, the floor under a broker's fan-out.
 */
async function publishLoop(url: string, sink: Sink, payloadBytes: number) {
  const base = sink.count;
  const copies = FANOUT_MESSAGES * FANOUT_TARGETS;
  const child = spawnSupport("publish-loop.ts", [
    url,
    String(FANOUT_MESSAGES),
    String(FANOUT_TARGETS),
    String(payloadBytes),
    String(FANOUT_WINDOW),
  ]);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await new Promise((resolve) => child.once("exit", resolve));
  const { seconds, cpuUs } = JSON.parse(output) as { seconds: number; cpuUs: number };
  const complete = await sink.until(base + copies);
  return { seconds, cpuPerCopyUs: cpuUs / copies, complete };
}

const µs = (seconds: number, count: number) => ((seconds / count) * 1e6).toFixed(0).padStart(6);

async function main() {
  choriaBinary();
  const peerDir = await mkdtemp(join(tmpdir(), "choria-edge-bench-peers-"));
  let stopGo: (() => Promise<unknown>) | undefined;
  const servers: NatsServer[] = [];
  const brokers: BrokerProcess[] = [];
  const buses: MessageBus[] = [];
  const connect = async (url: string, name: string) => {
    const b = await bus(url, name);
    buses.push(b);
    return b;
  };
  try {
    const [direct, federation, collective] = await Promise.all([
      startNatsServer({ name: "direct" }),
      startNatsServer({ name: "federation" }),
      startNatsServer({ name: "collective" }),
    ]);
    servers.push(direct, federation, collective);
    console.log(
      `round trips: ${ROUNDTRIPS} sequential, 3 responders, ${PAYLOAD_BYTES}-byte data; fan-out: ${FANOUT_MESSAGES} requests × ${FANOUT_TARGETS} targets`,
    );

    // (a) round trips: directly on one server; through two bare relay processes (the floor that any two
    // extra process hops cost here); through two brokers.
    const directClient = await connect(direct.url, "bench-direct-client");
    for (const node of NODES) startResponders(await connect(direct.url, `bench-direct-${node}`), [node]);
    await roundTrips(directClient, "direct", Math.min(500, ROUNDTRIPS));
    const directSeconds = await roundTrips(directClient, "direct", ROUNDTRIPS);

    const fedClient = await connect(federation.url, "bench-federated-client");
    for (const node of NODES) startResponders(await connect(collective.url, `bench-fed-${node}`), [node]);
    const relays = await Promise.all([1, 2].map(() => spawnRelay(federation.url, collective.url)));
    await roundTrips(fedClient, "relayed", Math.min(500, ROUNDTRIPS));
    const relayCpuBefore = relays.reduce((n, r) => n + cpuSeconds(r.pid), 0);
    const relayedSeconds = await roundTrips(fedClient, "relayed", ROUNDTRIPS);
    const relayCpu = relays.reduce((n, r) => n + cpuSeconds(r.pid), 0) - relayCpuBefore;
    await Promise.all(
      relays.map((relay) => new Promise((resolve) => relay.once("exit", resolve).kill("SIGTERM"))),
    );

    brokers.push(
      ...(await Promise.all(
        ["bench1", "bench2"].map((name) => spawnBroker(name, federation.url, collective.url)),
      )),
    );
    await roundTrips(fedClient, "brokered", Math.min(500, ROUNDTRIPS));
    const before = await Promise.all(brokers.map(stats));
    const cpuBefore = brokers.map((b) => cpuSeconds(b.child.pid));
    const brokeredSeconds = await roundTrips(fedClient, "brokered", ROUNDTRIPS);
    const cpuAfter = brokers.map((b) => cpuSeconds(b.child.pid));
    const after = await Promise.all(brokers.map(stats));

    const oursCpu = cpuAfter.reduce((a, b) => a + b, 0) - cpuBefore.reduce((a, b) => a + b, 0);
    const oursMessages = after.reduce(
      (n, doc, i) =>
        n +
        doc.federation.received -
        before[i]!.federation.received +
        doc.collective.received -
        before[i]!.collective.received,
      0,
    );

    // The same round trips through two go-choria federation brokers in place of ours.
    await Promise.all(brokers.splice(0).map((b) => b.kill("SIGTERM")));
    const pki = await ensureDemoPki(join(peerDir, "pki"), {
      nodes: ["fedbroker1.example.net", "fedbroker2.example.net"],
    });
    const goBrokers = await Promise.all(
      [1, 2].map((i) =>
        startChoriaFederationBroker({
          cluster: CLUSTER,
          federationUrl: federation.url,
          collectiveUrl: collective.url,
          pki,
          identity: `fedbroker${i}.example.net`,
        }),
      ),
    );
    stopGo = () => Promise.all(goBrokers.map((b) => b.stop()));
    await roundTrips(fedClient, "brokered", Math.min(500, ROUNDTRIPS));
    const goCpuBefore = goBrokers.reduce((n, b) => n + cpuSeconds(b.child.pid), 0);
    const goSeconds = await roundTrips(fedClient, "brokered", ROUNDTRIPS);
    const goCpu = goBrokers.reduce((n, b) => n + cpuSeconds(b.child.pid), 0) - goCpuBefore;

    const row = (name: string, seconds: number) =>
      console.log(`${name.padEnd(30)}${seconds.toFixed(2).padStart(8)}   ${µs(seconds, ROUNDTRIPS)}`);
    console.log("\n(a) sequential round trips (1 request, 3 replies each)");
    console.log(`${"".padEnd(30)}  total s   µs/round trip`);
    row("direct, one server", directSeconds);
    row("via 2 bare relays", relayedSeconds);
    row("via 2 of our brokers", brokeredSeconds);
    row(`via 2 go-choria ${GO_CHORIA_VERSION} brokers`, goSeconds);
    row("our overhead vs direct", brokeredSeconds - directSeconds);
    row("go-choria overhead vs direct", goSeconds - directSeconds);
    row("our overhead vs relays", brokeredSeconds - relayedSeconds);
    console.log(
      `  bare relays: ${µs(relayCpu, ROUNDTRIPS * (1 + NODES.length)).trim()} µs CPU per message (process total, incl. syscalls)`,
    );
    after.forEach((doc, i) => {
      const requests = doc.federation.received - before[i]!.federation.received;
      const replies = doc.collective.received - before[i]!.collective.received;
      const cpu = cpuAfter[i]! - cpuBefore[i]!;
      console.log(
        `  ${doc.instance}: ${requests} requests, ${replies} replies routed, ${µs(cpu, requests + replies).trim()} µs CPU per message (process total, incl. syscalls)`,
      );
    });
    const goMessages = ROUNDTRIPS * (1 + NODES.length);
    console.log(
      `  go-choria, both: ${goMessages} messages, ${µs(goCpu, goMessages).trim()} µs CPU per message (process total, incl. syscalls)`,
    );
    const perTrip = (seconds: number) => `${µs(seconds, ROUNDTRIPS).trim()} µs`;
    const perMessage = (cpu: number, n: number) => `${µs(cpu, n).trim()} µs`;
    recordSummary([
      {
        measure: "round trip via 2 brokers (3 replies)",
        figure: `${perTrip(brokeredSeconds)} (+${perTrip(brokeredSeconds - relayedSeconds)} over relays)`,
        goal: "≤ +50 µs over relays; below go-choria's",
        reference: `bare relays ${perTrip(relayedSeconds)}; go-choria ${perTrip(goSeconds)}; direct ${perTrip(directSeconds)}`,
      },
      {
        measure: "broker CPU per message",
        figure: perMessage(oursCpu, oursMessages),
        goal: "≤ 80 µs; below go-choria's",
        reference: `go-choria ${perMessage(goCpu, goMessages)}; bare relay ${perMessage(relayCpu, goMessages)}`,
      },
    ]);

    if (process.env.BENCH_SKIP_FANOUT === "1") return;
    // (b) fan-out: one go-choria broker, then one of ours, then two of ours.
    const sink = new Sink();
    const sinkBus = await connect(collective.url, "bench-sink");
    sinkBus.subscribe(`${COLLECTIVE}.node.>`, (msg) => sink.arrived(msg.data.length));
    await sinkBus.flush();
    await goBrokers[1]!.stop();
    console.log("\n(b) fan-out                 in/s     out/s   delivered   dropped   share of requests");
    const line = (name: string, r: Awaited<ReturnType<typeof fanOut>>, share: string) =>
      console.log(
        `${name.padEnd(20)}${r.complete ? " " : "!"}  ${(FANOUT_MESSAGES / r.seconds).toFixed(0).padStart(9)} ${((FANOUT_MESSAGES * FANOUT_TARGETS) / r.seconds).toFixed(0).padStart(9)}   ${String(r.delivered).padStart(9)}   ${r.dropped.padStart(7)}   ${share}`,
      );
    await fanOut(fedClient, sink, []); // warm-up
    const go = await fanOut(fedClient, sink, []);
    line("1 go-choria broker", go, "");
    await stopGo();
    stopGo = undefined;
    const outPerSecond = (r: Awaited<ReturnType<typeof fanOut>>) =>
      (FANOUT_MESSAGES * FANOUT_TARGETS) / r.seconds;
    let oneOfOurs = go;
    const copies = FANOUT_MESSAGES * FANOUT_TARGETS;
    for (const instances of [1, 2]) {
      brokers.push(await spawnBroker(`fanout${instances}`, federation.url, collective.url));
      await fanOut(fedClient, sink, brokers); // warm-up
      const r = await fanOut(fedClient, sink, brokers);
      if (instances === 1) oneOfOurs = r;
      if (instances === 1)
        console.log(
          `  ${brokers[0]!.instance}: ${((r.cpu / copies) * 1e6).toFixed(1)} µs CPU per copy out (process total)`,
        );
      const total = r.received.reduce((a, b) => a + b, 0);
      const share = r.received.map(
        (n, i) => `${brokers[i]!.instance} ${((n / Math.max(1, total)) * 100).toFixed(0)}%`,
      );
      line(`${instances} of our brokers`, r, share.join(", "));
    }
    const routedBytes = sink.lastBytes;
    await publishLoop(collective.url, sink, routedBytes); // warm-up
    const floor = await publishLoop(collective.url, sink, routedBytes);
    console.log(
      `bare nats.js publish loop${floor.complete ? " " : "!"} ${(copies / floor.seconds).toFixed(0).padStart(15)}   ${floor.cpuPerCopyUs.toFixed(1)} µs CPU per copy (the floor: publishing only)`,
    );
    recordSummary([
      {
        measure: "fan-out copies out/s, one broker",
        figure: outPerSecond(oneOfOurs).toFixed(0),
        goal: "≥ 200k; above go-choria's",
        reference: `go-choria ${outPerSecond(go).toFixed(0)}; bare nats.js publish loop ${(copies / floor.seconds).toFixed(0)}`,
      },
    ]);
  } finally {
    await stopGo?.();
    await Promise.allSettled(brokers.map((b) => b.kill("SIGTERM")));
    await Promise.allSettled(buses.map((b) => b.close()));
    await Promise.allSettled(servers.map((s) => s.dispose()));
    await rm(peerDir, { recursive: true, force: true });
  }
}

await main();
