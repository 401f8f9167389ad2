// A federation server dies (SIGKILL) while the gateway is answering a stream of sync requests through
// it: the gateway, the brokers and the collector reconnect to the two survivors, requests are answered in
// full again within seconds, and a job stored before the crash is still there with every result (R3 KV
// keeps a quorum), before and after the server comes back.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ServerSpec } from "../../../infra/topology.ts";
import {
  type Pipeline,
  type SyncOutcome,
  settledAsyncPing,
  startPipeline,
  syncPing,
  tally,
} from "./pipeline.ts";
import { survivalNatsServer } from "./support.ts";

const NODES = 10;
let pipeline: Pipeline;

beforeAll(async () => {
  pipeline = await startPipeline({
    nodes: NODES,
    binary: survivalNatsServer(),
  });
}, 60_000);

afterAll(async () => {
  await pipeline?.stop();
});

/** An async ping of every node that completed; its id. */
async function completedJob(): Promise<string> {
  const { id, answer } = await settledAsyncPing(pipeline);
  expect(answer.job.state).toBe("complete");
  return id;
}

/**
 * Reads the job until the gateway can (a stream whose leader died answers once the survivors have elected
 * another: seconds on 2.9) and checks every result is there; the statuses seen before, for the report.
 */
async function expectAllResults(jobId: string): Promise<string> {
  const started = Date.now();
  const seen: number[] = [];
  for (;;) {
    const { status, body } = await pipeline.getJob(jobId);
    if (status === 200) {
      expect(body.job.counts).toMatchObject({ ok: NODES, failed: 0, no_reply: 0 });
      expect(body.results.map((r) => r.identity).sort()).toEqual(pipeline.identities);
      return seen.length === 0 ? "at once" : `after ${Date.now() - started} ms (${seen.join(", ")} before)`;
    }
    seen.push(status);
    if (Date.now() - started > 20_000) throw new Error(`job ${jobId} unreadable: ${seen.join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function serverOf(url: string): ServerSpec | undefined {
  return pipeline.topo.topology.federation.servers.find((s) => url.endsWith(`:${s.port}`));
}

it("loses the gateway's federation server mid-stream: everyone moves to the survivors, no stored reply is lost", async () => {
  const before = await completedJob();

  const lease = await pipeline.gateway.nats.acquire();
  const victim = serverOf(lease.bus.connectedUrl());
  await lease.release();
  expect(victim).toBeDefined();

  // Two callers sending sync requests back to back; the server dies once a few have been answered.
  const outcomes: SyncOutcome[] = [];
  let killedAt = 0;
  let fullSinceKill = 0;
  const worker = async () => {
    while (killedAt === 0 || (fullSinceKill < 10 && Date.now() - killedAt < 20_000)) {
      const outcome = await syncPing(pipeline, 3);
      outcomes.push(outcome);
      if (killedAt !== 0 && outcome.at > killedAt && outcome.kind === "full") fullSinceKill++;
      if (killedAt === 0 && outcomes.length >= 6) {
        killedAt = Date.now();
        await pipeline.topo.server(victim!.name).kill();
      }
    }
  };
  await Promise.all([worker(), worker()]);

  // Answered before the crash: in full. In flight across it: whatever came back (a node's reply on its
  // way through the dead server is gone; the gateway reports the node in no_reply). Asked after it: in full
  // again as soon as the connection has moved.
  const done = outcomes.filter((o) => o.end < killedAt);
  const inFlight = outcomes.filter((o) => o.at < killedAt && o.end >= killedAt);
  const after = outcomes.filter((o) => o.at >= killedAt);
  expect(done.every((o) => o.kind === "full")).toBe(true);
  expect(fullSinceKill, tally(after)).toBeGreaterThanOrEqual(10);
  const firstFull = after.find((o) => o.kind === "full")!;
  const lastShort = after.filter((o) => o.kind !== "full").at(-1);
  // Shown in the report.
  console.log(
    `killed ${victim!.name}; in flight: ${tally(inFlight)}; asked after: ${tally(after)}; first full answer ${firstFull.at - killedAt} ms after the kill${lastShort ? `, last short one ${lastShort.at - killedAt} ms after` : ""}`,
  );
  // Nothing short once the clients have moved: a short answer is one that was asked within the moment
  // it takes to reconnect.
  expect(lastShort === undefined || lastShort.at - killedAt < 5000).toBe(true);

  // Every client is on a survivor now.
  const now = await pipeline.gateway.nats.acquire();
  expect(serverOf(now.bus.connectedUrl())?.name).not.toBe(victim!.name);
  await now.release();
  for (const broker of pipeline.brokers)
    expect(serverOf(broker.federation.connectedUrl())?.name).not.toBe(victim!.name);
  expect(serverOf(pipeline.collector.bus.connectedUrl())?.name).not.toBe(victim!.name);

  // What was stored before the crash is all there, once the bucket's stream has a leader again. (A job
  // made during the outage is not asserted: on 2.9.10 KV writes sometimes time out for over 20 s after
  // the leader's server dies; see the README's topology section.)
  try {
    console.log(`job stored before the kill readable ${await expectAllResults(before)}`);
  } catch (err) {
    console.log(
      [...pipeline.gatewayLog, ...pipeline.collectorLog]
        .filter((l) => !l.startsWith("debug"))
        .slice(-40)
        .join("\n"),
    );
    throw err;
  }

  // The server comes back and catches up.
  await pipeline.topo.server(victim!.name).start();
  await pipeline.topo.ready();
  await expectAllResults(before);
}, 60_000);
