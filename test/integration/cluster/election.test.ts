// The server that leads the jobs bucket's stream dies (SIGKILL) while callers create async jobs and read
// one: until the survivors elect a new leader the bucket cannot answer, and every request of that window
// must come back as a 503 with Retry-After (the caller's cue to try again), never as a 500 or a hang, and
// most of them at once rather than after the client's request timeout.
// Replay claims stay in memory here: in KV they may share the victim as leader, and their check (a 503
// replay-store-unavailable since it was written) would then refuse every request before the jobs bucket
// is reached.
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Pipeline, settledAsyncPing, startPipeline, tally } from "./pipeline.ts";
import { clusterNatsServer, rawConnection } from "./support.ts";

const NODES = 4;
/** Long enough for 2.9.10, whose streams have taken over 20 s to elect a leader after a kill. */
const OUTAGE_BUDGET_MS = 45_000;
let pipeline: Pipeline;
let observer: NatsConnection;

beforeAll(async () => {
  const binary = clusterNatsServer();
  pipeline = await startPipeline({ nodes: NODES, ...(binary ? { binary } : {}) });
  const { topology } = pipeline.topo;
  observer = await rawConnection(topology, topology.roles.gateway, topology.federation.urls, "observer");
}, 60_000);

afterAll(async () => {
  await observer?.close().catch(() => {});
  await pipeline?.stop();
});

/** The server that leads a bucket's stream now, or undefined while there is none (or no answer). */
async function leaderOf(bucket: string): Promise<string | undefined> {
  try {
    const jsm = await jetstreamManager(observer, { timeout: 1000 });
    return (await jsm.streams.info(`KV_${bucket}`)).cluster?.leader;
  } catch {
    return undefined;
  }
}

interface Outcome {
  at: number;
  /** How long the answer took. */
  ms: number;
  what: "create" | "read";
  /** `ok`, `503+retry-after:<problem kind>`, or anything else (a failure of this test). */
  kind: string;
}

async function outcomeOf(what: Outcome["what"], request: () => Promise<Response>): Promise<Outcome> {
  const at = Date.now();
  try {
    const response = await request();
    const text = await response.text();
    const ms = Date.now() - at;
    if (response.status === 200 || response.status === 202) return { at, ms, what, kind: "ok" };
    const type = String((JSON.parse(text) as { type?: string }).type);
    const kind = type.slice(type.lastIndexOf("/") + 1);
    const retry = response.headers.get("retry-after") === null ? "" : "+retry-after";
    return { at, ms, what, kind: `${response.status}${retry}:${kind}` };
  } catch (err) {
    return { at, ms: Date.now() - at, what, kind: `error: ${String(err)}` };
  }
}

it("answers 503 with Retry-After, never 500, while the jobs bucket elects a new leader", async () => {
  const { topo } = pipeline;
  const buckets = topo.topology.buckets;
  const { id: known } = await settledAsyncPing(pipeline);
  const victim = await leaderOf(buckets.jobs);
  expect(victim).toBeDefined();
  const replayLeader = await leaderOf(buckets.replay);

  const outcomes: Outcome[] = [];
  let killedAt = 0;
  let createdSinceKill = 0;
  const create = () =>
    outcomeOf("create", () =>
      pipeline.post({
        agent: "rpcutil",
        action: "ping",
        nodes: pipeline.identities,
        mode: "async",
        timeout: 2,
      }),
    );
  const read = () => outcomeOf("read", () => pipeline.fetchJob(known));
  const caller = async () => {
    while (killedAt === 0 || (createdSinceKill < 10 && Date.now() - killedAt < OUTAGE_BUDGET_MS)) {
      for (const outcome of [await create(), await read()]) {
        outcomes.push(outcome);
        if (killedAt !== 0 && outcome.at > killedAt && outcome.what === "create" && outcome.kind === "ok")
          createdSinceKill++;
      }
      if (killedAt === 0 && outcomes.length >= 8) {
        killedAt = Date.now();
        await topo.server(victim!).kill();
      }
    }
  };
  // The new leader, as the survivors report it, beside the callers.
  let electedMs: number | undefined;
  const watch = async () => {
    while (killedAt === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    while (electedMs === undefined && Date.now() - killedAt < OUTAGE_BUDGET_MS) {
      const leader = await leaderOf(buckets.jobs);
      if (leader !== undefined && leader !== victim) electedMs = Date.now() - killedAt;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  await Promise.all([caller(), caller(), caller(), watch()]);

  const after = outcomes.filter((o) => o.at >= killedAt);
  const firstCreate = after.find((o) => o.what === "create" && o.kind === "ok");
  const refusals = after.filter((o) => o.kind !== "ok");
  const lastRefusal = refusals.at(-1);
  const counts = tally(after.map((o) => ({ kind: `${o.what} ${o.kind}` })));
  const slowest = Math.max(0, ...refusals.map((o) => o.ms));
  const prompt = refusals.filter((o) => o.ms < 1000).length;
  // Shown in the report.
  console.log(
    `killed ${victim} (jobs leader; replay leader was ${replayLeader}); new leader after ${electedMs} ms; first job made ${firstCreate ? firstCreate.at - killedAt : "-"} ms after the kill; last refusal asked ${lastRefusal ? lastRefusal.at - killedAt : "-"} ms after, slowest refusal ${slowest} ms, ${prompt} of ${refusals.length} refusals within 1 s; ${counts}`,
  );
  const wrong = after.filter((o) => o.kind !== "ok" && !o.kind.startsWith("503+retry-after:"));
  expect(wrong, counts).toEqual([]);
  expect(createdSinceKill, counts).toBeGreaterThanOrEqual(10);
  // One call at a time waits for the bucket; the others hear at once instead of after a 5 s timeout each.
  expect(prompt, counts).toBeGreaterThan(refusals.length / 2);
}, 120_000);
