// Async requests end to end on Node: signed POST → 202 and a job → the request goes out with the
// collectors' reply subject → replies come back through the federation into the collector (JetStream,
// in this process) → signed GETs read the job from the same KV bucket.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeGatewaySettings } from "../../../functions/gateway-env.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { generateHttpKey, type SigningKey, signHttpRequest } from "../../../lib/security/http/mod.ts";
import { verifyWebhook } from "../../../lib/security/webhooks/mod.ts";
import { testPki } from "../../support/pki.ts";
import { collectorConfig, gatewaySide, memoryLog, TEST_SEAL_KEY } from "../results/support.ts";
import {
  type CallbackReceiver,
  CLUSTER,
  type Federation,
  signedInit,
  startCallbackReceiver,
  startFederation,
  type TestKeys,
  testKeys,
} from "./support.ts";

// Callers sign the URL they see, which is the public one, not the test's 127.0.0.1 address.
const PUBLIC = "https://gateway.example.com";
const NODES = 4;
const MAX_PAYLOAD = 8192;

let federation: Federation;
let keys: TestKeys;
let collector: RunningCollector;
let gateway: RunningGateway;
let syncOnly: RunningGateway;
let notified: SigningKey;
/** May name callbacks under the receiver's /jobs-done (callbackUrls), and nowhere else. */
let hooked: SigningKey;
let receiver: CallbackReceiver;
const collectorLog = memoryLog();

const NOTIFIED_SECRET = `whsec_${btoa("callback secret of this key")}`;

// Short, so that a sync request can be seen to outlast it.
const SYNC_BUDGET_MS = 1500;

async function settings(jobs: boolean): Promise<NodeGatewaySettings> {
  const pki = await testPki();
  const config = gatewayConfigFrom({
    clusters: { [CLUSTER]: ["mcollective"] },
    publicUrl: PUBLIC,
    syncBudgetMs: SYNC_BUDGET_MS,
    callbackSealKey: TEST_SEAL_KEY,
  });
  if (!config.ok) throw new Error(config.error);
  return {
    config: config.config,
    listen: { host: "127.0.0.1", port: 0 },
    natsServers: [federation.federation.url],
    natsAuth: { type: "none" },
    certPem: pki.gateway.certPem,
    keyPem: pki.gateway.keyPem,
    keysJson: keysWithCallback,
    jobs,
    readyFile: undefined,
  };
}

let keysWithCallback: string;

beforeAll(async () => {
  receiver = await startCallbackReceiver();
  [federation, keys] = await Promise.all([
    startFederation(NODES, {
      jetstream: true,
      // Small enough that an oversized request is refused by the NATS client, as a closed connection would be.
      federationConfig: `max_payload: ${MAX_PAYLOAD}`,
    }),
    testKeys(),
  ]);
  const withCallback = await generateHttpKey({
    id: "notified",
    caller: "ops",
    scheme: "ed25519",
    policy: { clusters: [CLUSTER], collectives: ["*"], agents: ["rpcutil"], actions: ["rpcutil#*"] },
  });
  notified = { id: "notified", scheme: "ed25519", privateKey: withCallback.keyFile.privateKey! };
  const mayCallBack = await generateHttpKey({
    id: "hooked",
    caller: "ops",
    scheme: "ed25519",
    policy: {
      clusters: [CLUSTER],
      collectives: ["*"],
      agents: ["rpcutil"],
      actions: ["rpcutil#*"],
      callbackUrls: [new URL("/jobs-done", receiver.url).href],
    },
  });
  hooked = { id: "hooked", scheme: "ed25519", privateKey: mayCallBack.keyFile.privateKey! };
  keysWithCallback = JSON.stringify({
    keys: [
      ...(JSON.parse(keys.json) as { keys: unknown[] }).keys,
      mayCallBack.config,
      {
        ...withCallback.config,
        callback: { kind: "url", url: receiver.url, secret: NOTIFIED_SECRET },
      },
    ],
  });
  collector = await startCollector(collectorConfig(federation.federation), { log: collectorLog });
  const start = async (jobs: boolean) =>
    startGateway(await settings(jobs), { log: () => {}, audit: () => {} });
  [gateway, syncOnly] = await Promise.all([start(true), start(false)]);
});

afterAll(async () => {
  await Promise.allSettled([gateway?.close(), syncOnly?.close()]);
  await collector?.stop();
  await federation?.stop();
  await receiver?.close();
});

const identities = () => federation.fleet.map((node) => node.identity).sort();

async function post(
  target: RunningGateway,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  key: SigningKey = keys.admin,
) {
  return fetch(
    `${target.url}/v1/rpc`,
    await signedInit(`${PUBLIC}/v1/rpc`, { cluster: CLUSTER, ...body }, key, headers),
  );
}

async function signed(method: "GET" | "DELETE", path: string, key: SigningKey = keys.admin) {
  const headers = await signHttpRequest({ method, url: `${PUBLIC}${path}`, headers: {}, key });
  return fetch(`${gateway.url}${path}`, { method, headers });
}

interface JobAnswer {
  job: { id: string; state: string; counts: Record<string, number> };
  results: { identity: string; status: string }[];
}

async function settledJob(path: string): Promise<JobAnswer> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const response = await signed("GET", path);
    expect(response.status).toBe(200);
    const answer = (await response.json()) as JobAnswer;
    if (answer.job.state !== "running") return answer;
    if (Date.now() > deadline) throw new Error(`job still running:\n${collectorLog.lines.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("async requests through the Node gateway", () => {
  const ping = () => ({ agent: "rpcutil", action: "ping", nodes: identities(), timeout: 10, mode: "async" });

  it("answers 202 with a job whose results fill in from every node; a repeated key asks nobody again", async () => {
    const first = await post(gateway, ping(), { "idempotency-key": "deploy-42" });
    expect(first.status).toBe(202);
    const accepted = (await first.json()) as { job_id: string; status_url: string };
    const location = first.headers.get("location");
    expect(location).toBe(`/v1/jobs/${accepted.job_id}`);
    expect(accepted.status_url).toBe(`${PUBLIC}${location}`);

    const answer = await settledJob(location!);
    expect(answer.job.state).toBe("complete");
    expect(answer.job.counts).toMatchObject({ ok: NODES, failed: 0, no_reply: 0, unexpected: 0 });
    expect(answer.results.map((r) => r.identity).sort()).toEqual(identities());
    expect(answer.results.every((r) => r.status === "ok")).toBe(true);
    expect(federation.nodes.stats.received).toBe(NODES);

    const again = await post(gateway, ping(), { "idempotency-key": "deploy-42" });
    expect(again.status).toBe(202);
    expect(((await again.json()) as { job_id: string }).job_id).toBe(accepted.job_id);
    // A sync request to one node on the same connection comes after anything the repeat could have sent.
    const barrier = await post(gateway, { agent: "rpcutil", action: "ping", nodes: [identities()[0]] });
    expect(barrier.status).toBe(200);
    expect(federation.nodes.stats.received).toBe(NODES + 1);

    const conflict = await post(gateway, { ...ping(), timeout: 9 }, { "idempotency-key": "deploy-42" });
    expect(conflict.status).toBe(422);
    expect(((await conflict.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}idempotency-conflict`);
  });

  it("takes Prefer: respond-async on a sync request, and says it applied it", async () => {
    const response = await post(
      gateway,
      { agent: "rpcutil", action: "ping", nodes: identities().slice(0, 2) },
      { prefer: "respond-async, wait=5" },
    );
    expect(response.status).toBe(202);
    expect(response.headers.get("preference-applied")).toBe("respond-async");
    const answer = await settledJob(response.headers.get("location")!);
    expect(answer.results.map((r) => r.identity).sort()).toEqual(identities().slice(0, 2));
  });

  it("lets the job's creator read it, and another key only when its policy reads jobs it allows", async () => {
    const response = await post(gateway, { ...ping(), nodes: identities().slice(0, 1) });
    const location = response.headers.get("location")!;
    const other = await signed("GET", location, keys.narrow);
    expect(other.status).toBe(403);
    expect(((await other.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}forbidden`);
    const unsigned = await fetch(`${gateway.url}${location}`);
    expect(unsigned.status).toBe(401);
    expect((await signed("GET", location)).status).toBe(200);
    const audited = await signed("GET", location, keys.auditor);
    expect(audited.status).toBe(200);
    expect(((await audited.json()) as { job: { cluster: string } }).job.cluster).toBe(CLUSTER);

    const echo = await post(gateway, {
      ...ping(),
      agent: "demo",
      action: "echo",
      nodes: identities().slice(0, 1),
    });
    expect(echo.status).toBe(202);
    expect((await signed("GET", echo.headers.get("location")!, keys.auditor)).status).toBe(403);
  });

  it("finds a repeated Idempotency-Key's job before discovery, so the fleet is not asked again", async () => {
    const discover = { agent: "rpcutil", action: "ping", mode: "async", timeout: 5, discovery_timeout: 1 };
    const first = await post(gateway, discover, { "idempotency-key": "discover-once" });
    expect(first.status).toBe(202);
    expect(first.headers.get("server-timing")).toContain("discovery;");
    const jobId = ((await first.json()) as { job_id: string }).job_id;
    await settledJob(`/v1/jobs/${jobId}`);
    const received = federation.nodes.stats.received;

    const again = await post(gateway, discover, { "idempotency-key": "discover-once" });
    expect(again.status).toBe(202);
    expect(((await again.json()) as { job_id: string }).job_id).toBe(jobId);
    expect(again.headers.get("server-timing")).not.toContain("discovery;");
    const barrier = await post(gateway, {
      agent: "rpcutil",
      action: "ping",
      nodes: [identities()[0]],
      timeout: 1,
    });
    expect(barrier.status).toBe(200);
    expect(federation.nodes.stats.received).toBe(received + 1);
  });

  it("runs a sync request that could outlast the wait budget as a job, and answers 200 when it ends in time", async () => {
    const response = await post(gateway, {
      agent: "rpcutil",
      action: "ping",
      nodes: identities(),
      timeout: 10,
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as {
      job_id: string;
      summary: { ok: number; expected: number; no_reply: number; done: string };
      replies: { identity: string; statuscode: number }[];
    };
    expect(result.summary).toMatchObject({ ok: NODES, expected: NODES, no_reply: 0, done: "expected" });
    expect(result.replies.map((r) => r.identity).sort()).toEqual(identities());
    const job = await settledJob(`/v1/jobs/${result.job_id}`);
    expect(job.job.state).toBe("complete");
  });

  it("answers 202 with the job once a sync request has spent its wait budget; the job goes on", async () => {
    const sent = Date.now();
    const response = await post(gateway, {
      agent: "demo",
      action: "sleep",
      data: { seconds: 3 },
      nodes: identities().slice(0, 2),
      timeout: 10,
    });
    expect(response.status).toBe(202);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(SYNC_BUDGET_MS);
    expect(response.headers.get("preference-applied")).toBeNull();
    const answer = await settledJob(response.headers.get("location")!);
    expect(answer.job.state).toBe("complete");
    expect(answer.job.counts).toMatchObject({ ok: 2, no_reply: 0 });
  });

  it("answers a discovery that finds nobody at once (200, expected 0), its job already complete", async () => {
    const sent = Date.now();
    const response = await post(gateway, {
      agent: "rpcutil",
      action: "ping",
      filter: { identity: ["nobody.example.net"] },
    });
    const waited = Date.now() - sent;
    expect(response.status).toBe(200);
    const result = (await response.json()) as {
      job_id: string;
      summary: { discovered: number; expected: number; done: string };
      discovery: unknown;
    };
    expect(result.summary).toMatchObject({ discovered: 0, expected: 0, done: "expected" });
    // Nobody answered, so the stall rule never started: discovery waited its whole window.
    expect(result.discovery).toEqual({ complete: true, found: 0, reason: "timeout" });
    expect(waited).toBeLessThan(2000 + SYNC_BUDGET_MS);
    const job = await signed("GET", `/v1/jobs/${result.job_id}`);
    const body = (await job.json()) as { job: { state: string; discovery: unknown } };
    expect(body.job).toMatchObject({ state: "complete", discovery: result.discovery });
  });

  it("says when the stall rule ended discovery, in the answer and in the job", async () => {
    const response = await post(gateway, { agent: "rpcutil", action: "ping", mode: "async" });
    expect(response.status).toBe(202);
    const answer = await settledJob(response.headers.get("location")!);
    expect((answer.job as unknown as { discovery: unknown }).discovery).toEqual({
      complete: false,
      found: NODES,
      reason: "stall",
    });
  });

  it("keeps a sync request that fits the budget off the job store", async () => {
    const response = await post(gateway, {
      agent: "rpcutil",
      action: "ping",
      nodes: identities(),
      timeout: 1,
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as { job_id?: string; summary: { ok: number } };
    expect(result.summary.ok).toBe(NODES);
    expect(result.job_id).toBeUndefined();
  });

  it("streams a job's results as server-sent events, and cancels a job on DELETE", async () => {
    const done = await post(gateway, { ...ping(), nodes: identities().slice(0, 2) });
    const doneAt = done.headers.get("location")!;
    await settledJob(doneAt);
    const events = await signed("GET", `${doneAt}/events`);
    expect(events.headers.get("content-type")).toBe("text/event-stream");
    const names = [...(await events.text()).matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(names).toEqual(["result", "result", "end"]);

    const silent = await post(gateway, { ...ping(), nodes: ["ghost.example.net"], timeout: 60 });
    const silentAt = silent.headers.get("location")!;
    const cancelled = await signed("DELETE", silentAt);
    expect(cancelled.status).toBe(200);
    const answer = await settledJob(silentAt);
    expect(answer.job.state).toBe("cancelled");
    expect(answer.results).toEqual([
      expect.objectContaining({ identity: "ghost.example.net", status: "no_reply" }),
    ]);
  });

  it("frees the Idempotency-Key of a request NATS refused, so that a retry runs it", async () => {
    const tooLarge = { ...ping(), data: { blob: "x".repeat(MAX_PAYLOAD) } };
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await post(gateway, tooLarge, { "idempotency-key": "too-large" });
      expect(response.status).toBe(503);
      expect(((await response.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}upstream-unavailable`);
    }
  });

  it("reports a job's end to its key's default callback when the request names none", async () => {
    const response = await post(gateway, { ...ping(), nodes: identities().slice(0, 2) }, {}, notified);
    expect(response.status).toBe(202);
    const jobId = ((await response.json()) as { job_id: string }).job_id;
    const deliveries = await receiver.deliveriesFor(jobId);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]!.headers["webhook-signature"]).toMatch(/^v1,/);
    expect(JSON.parse(deliveries[0]!.body)).toMatchObject({
      data: { id: jobId, caller: "notified", state: "complete" },
    });
  });

  it("refuses a callback the key's policy does not name (403, before any job or request), allows one it does", async () => {
    const nats = new URL(federation.federation.url);
    const secret = `whsec_${btoa("a caller's own callback secret")}`;
    for (const [key, url] of [
      [keys.admin, receiver.url],
      [keys.admin, `http://127.0.0.1:${nats.port}/`],
      [hooked, `http://127.0.0.1:${nats.port}/jobs-done`],
      [hooked, `${receiver.url}-elsewhere`],
    ] as const) {
      const response = await post(
        gateway,
        { ...ping(), callback: { kind: "url", url, secret } },
        { "idempotency-key": `callback-${key.id}-${url}` },
        key,
      );
      expect(response.status, `${key.id} ${url}`).toBe(403);
      const doc = (await response.json()) as { type: string; detail: string; job_id?: string };
      expect(doc.type).toBe(`${PROBLEM_BASE}forbidden`);
      expect(doc.detail).toMatch(/callbackUrls/);
      expect(doc.job_id).toBeUndefined();
    }
    const lambda = await post(
      gateway,
      { ...ping(), callback: { kind: "lambda", function_name: "f" } },
      {},
      hooked,
    );
    expect(lambda.status).toBe(403);

    const response = await post(
      gateway,
      { ...ping(), nodes: identities().slice(0, 1), callback: { kind: "url", url: receiver.url, secret } },
      {},
      hooked,
    );
    expect(response.status).toBe(202);
    const jobId = ((await response.json()) as { job_id: string }).job_id;
    expect(await receiver.deliveriesFor(jobId)).toHaveLength(1);
  });

  it("keeps callback secrets out of the job record in clear; deliveries are still signed with them", async () => {
    const secret = `whsec_${btoa("the caller's secret, only for its receiver")}`;
    const response = await post(
      gateway,
      { ...ping(), nodes: identities().slice(0, 1), callback: { kind: "url", url: receiver.url, secret } },
      {},
      hooked,
    );
    expect(response.status).toBe(202);
    const jobId = ((await response.json()) as { job_id: string }).job_id;
    const byDefault = await post(gateway, { ...ping(), nodes: identities().slice(0, 1) }, {}, notified);
    const defaultJobId = ((await byDefault.json()) as { job_id: string }).job_id;

    // What anyone who can read the bucket sees.
    const side = await gatewaySide(federation.federation);
    try {
      for (const [id, clear] of [
        [jobId, secret],
        [defaultJobId, NOTIFIED_SECRET],
      ] as const) {
        const stored = JSON.stringify((await side.store.get(id))!.record);
        expect(stored).not.toContain(clear);
        expect(stored).not.toContain(clear.slice("whsec_".length));
        expect(stored).toMatch(/"secret_sealed":"v1\./);
      }
    } finally {
      await side.bus.close();
    }
    for (const [id, key] of [
      [jobId, secret],
      [defaultJobId, NOTIFIED_SECRET],
    ] as const) {
      const [delivery] = await receiver.deliveriesFor(id);
      const verdict = await verifyWebhook(
        "standard-webhooks",
        { secrets: [key] },
        {
          headers: new Headers(delivery!.headers as Record<string, string>),
          body: new TextEncoder().encode(delivery!.body),
        },
        { now: new Date() },
      );
      expect(verdict.ok).toBe(true);
    }
  });

  it("is refused as async-unavailable by a gateway without --jobs", async () => {
    const response = await post(syncOnly, ping());
    expect(response.status).toBe(501);
    expect(((await response.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}async-unavailable`);
  });
});
