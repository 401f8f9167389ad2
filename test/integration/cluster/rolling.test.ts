// The three federation servers are restarted one by one in lame duck mode (SIGUSR2: JetStream leaders
// handed over, clients moved off, then the stop), as an operator upgrading the cluster would, while
// callers send sync requests and make async jobs. A client's move between servers is a moment in which
// core NATS messages to it are lost, so requests in flight across a restart may come back short; nothing
// else may: no request asked outside a restart, no job left running, no stored reply lost.
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { COLLECTOR_QUEUE, REPLY_STREAM } from "../../../lib/results/jobs/mod.ts";
import {
  type Pipeline,
  type SyncOutcome,
  settledAsyncPing,
  startPipeline,
  syncPing,
  tally,
} from "./pipeline.ts";
import { eventually, rawConnection, survivalNatsServer } from "./support.ts";

const NODES = 6;
const JOB_TIMEOUT_S = 2;
// Load before the first restart and after the last, longer than a job lives: jobs clear of every restart.
const QUIET_MS = 3000;
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

/** The server's own health check: 200 once it serves clients and its JetStream assets are current. */
async function healthy(monitorPort: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, {
      signal: AbortSignal.timeout(1000),
    });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

interface Made {
  at: number;
  status: number;
  id?: string;
  problem?: string | undefined;
}

/** A job's end as the gateway shows it, once it is no longer running; the last view if it never ends. */
async function settled(id: string): Promise<{ state: string; counts: Record<string, number> }> {
  let last = { state: "unreadable", counts: {} as Record<string, number> };
  await eventually(
    `job ${id} settled`,
    async () => {
      const { status, body } = await pipeline.getJob(id);
      if (status === 200) last = body.job;
      // Ended, and every target has its result or its no_reply mark.
      return status === 200 && body.job.state !== "running" && body.job.counts.outstanding === 0;
    },
    (JOB_TIMEOUT_S + 15) * 1000,
  ).catch(() => {});
  return last;
}

/** What the collector's side looked like, for a report of jobs that came back short. */
async function collectorState(): Promise<string> {
  const { topology } = pipeline.topo;
  const nc = await rawConnection(topology, topology.roles.collector, topology.federation.urls, "diagnosis");
  try {
    const jsm = await jetstreamManager(nc);
    const consumer = await jsm.consumers.info(REPLY_STREAM, COLLECTOR_QUEUE);
    const stream = await jsm.streams.info(REPLY_STREAM);
    return `reply consumer: pending ${consumer.num_pending}, ack pending ${consumer.num_ack_pending}, ack floor ${consumer.ack_floor.stream_seq} of ${stream.state.last_seq}; collector ${JSON.stringify(pipeline.collector.collector.stats)}`;
  } finally {
    await nc.close();
  }
}

it("restarts every federation server in turn under load: only requests in flight across a move come back short", async () => {
  const { id: before } = await settledAsyncPing(pipeline);
  const sync: SyncOutcome[] = [];
  const jobs: Made[] = [];
  const windows: { server: string; from: number; to: number }[] = [];
  let rolling = true;

  const syncCaller = async () => {
    while (rolling) sync.push(await syncPing(pipeline, 3));
  };
  const jobMaker = async () => {
    while (rolling) {
      const at = Date.now();
      const response = await pipeline
        .post({
          agent: "rpcutil",
          action: "ping",
          nodes: pipeline.identities,
          mode: "async",
          timeout: JOB_TIMEOUT_S,
        })
        .catch(() => undefined);
      const body = response?.status === 202 ? ((await response.json()) as { job_id: string }) : undefined;
      const problem = response !== undefined && body === undefined ? await response.text() : undefined;
      jobs.push({ at, status: response?.status ?? 0, ...(body ? { id: body.job_id } : { problem }) });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const roll = async () => {
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    for (const server of pipeline.topo.topology.federation.servers) {
      const from = Date.now();
      await pipeline.topo.server(server.name).lameDuck();
      await pipeline.topo.server(server.name).start();
      await pipeline.topo.ready();
      await eventually(`${server.name} healthy`, () => healthy(server.monitorPort), 30_000);
      windows.push({ server: server.name, from, to: Date.now() });
    }
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    rolling = false;
  };
  await Promise.all([syncCaller(), syncCaller(), jobMaker(), roll()]);

  const overlaps = (from: number, to: number) => windows.some((w) => from <= w.to && to >= w.from);
  const outside = sync.filter((o) => !overlaps(o.at, o.end));
  const inside = sync.filter((o) => overlaps(o.at, o.end));
  const refusedJobs = jobs.filter((j) => j.id === undefined);
  const ends = await Promise.all(
    jobs.flatMap((j) => (j.id === undefined ? [] : [settled(j.id).then((end) => ({ ...j, ...end }))])),
  );
  const clear = ends.filter((j) => !overlaps(j.at, j.at + JOB_TIMEOUT_S * 1000));
  const across = ends.filter((j) => overlaps(j.at, j.at + JOB_TIMEOUT_S * 1000));
  const short = (j: (typeof ends)[number]) => j.state !== "complete" || j.counts.ok !== NODES;
  const jobKinds = (list: typeof ends) =>
    tally(list.map((j) => ({ kind: short(j) ? `${j.state} ${j.counts.ok ?? 0}/${NODES}` : "complete" })));
  // Shown in the report.
  console.log(
    `restarts: ${windows.map((w) => `${w.server} ${w.to - w.from} ms`).join(", ")}; sync asked outside restarts ${tally(outside)}, across one ${tally(inside)}; jobs clear of restarts ${jobKinds(clear)}, across one ${jobKinds(across)}, refused ${tally(refusedJobs.map((j) => ({ kind: String(j.status) })))}`,
  );
  if (ends.some(short)) console.log(await collectorState());
  for (const refused of refusedJobs.filter((j) => j.status !== 503))
    console.log(
      `refused ${refused.status}: ${refused.problem}\n${pipeline.gatewayLog.filter((l) => l.startsWith("error")).join("\n")}`,
    );

  expect(outside.length).toBeGreaterThan(0);
  expect(
    outside.filter((o) => o.kind !== "full"),
    tally(outside),
  ).toEqual([]);
  expect(clear.length).toBeGreaterThan(0);
  expect(clear.filter(short), jobKinds(clear)).toEqual([]);
  // Across a restart: answered, short, or refused with 503 (a stream between leaders, or the connection
  // moving as the gateway checked it); never a failure, and every job ends, its missing nodes counted as
  // no_reply.
  expect(
    inside.filter((o) => !["full", "partial", "503"].includes(o.kind)),
    tally(inside),
  ).toEqual([]);
  expect(
    refusedJobs.filter((j) => j.status !== 503),
    tally(refusedJobs.map((j) => ({ kind: String(j.status) }))),
  ).toEqual([]);
  for (const job of across)
    expect(
      (job.counts.ok ?? 0) + (job.counts.no_reply ?? 0),
      `${job.id} ${job.state} ${JSON.stringify(job.counts)}`,
    ).toBe(NODES);
  expect(ends.filter((j) => j.state === "running" || j.state === "unreadable")).toEqual([]);

  // The job stored before the roll still has every reply, and every server runs again.
  expect((await settled(before)).counts.ok).toBe(NODES);
  for (const server of pipeline.topo.servers) expect(server.running(), server.spec.name).toBe(true);
}, 240_000);
