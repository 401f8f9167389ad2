import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { creatorOnly, jobRoutes } from "../../../lib/gateway/jobs.ts";
import type { NodeService } from "../../../lib/node/service.ts";
import { DEFAULT_BUCKET, resultKey } from "../../../lib/results/jobs/keys.ts";
import { endJob } from "../../../lib/results/jobs/lifecycle.ts";
import type { JobResult, StoredResult } from "../../../lib/results/jobs/model.ts";
import type { JobStore } from "../../../lib/results/jobs/store.ts";
import { jobReplySubject } from "../../../lib/results/jobs/subjects.ts";
import { newWebhookSecret } from "../../../lib/results/jobs/webhook.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { type LambdaApi, startLambdaApi } from "../../support/lambda-api.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import {
  CALLER,
  COLLECTIVE,
  forgedReply,
  type Nodes,
  type Receiver,
  repliesOf,
  signedRequest,
  simulatedNodes,
  startReceiver,
} from "../../unit/results/jobs/support.ts";
import {
  asyncRequest,
  collectorConfig,
  gatewaySide,
  memoryLog,
  nodesOn,
  recordOf,
  waitUntil,
} from "./support.ts";

const SECRET = newWebhookSecret();
const log = memoryLog();
let server: NatsServer;
let nodes: Nodes;
let nodesBus: NatsBus;
let service: NodeService;
let gateway: { bus: NatsBus; store: JobStore };
let collector: RunningCollector;
let receiver: Receiver;
let lambda: LambdaApi;
const lambdaEvents: unknown[] = [];

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = "AKIDEXAMPLETEST";
  process.env.AWS_SECRET_ACCESS_KEY = "test-secret-key";
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  [server, nodes, receiver, lambda] = await Promise.all([
    startNatsServer({ jetstream: true }),
    simulatedNodes(30),
    startReceiver(SECRET),
    startLambdaApi({ "job-finished": (event) => void lambdaEvents.push(event) }),
  ]);
  ({ bus: nodesBus, service } = await nodesOn(server, nodes));
  gateway = await gatewaySide(server);
  collector = await startCollector(
    collectorConfig(server, {
      callbackSecret: SECRET,
      lambdaEndpoint: lambda.url,
      lambdaRegion: "eu-west-1",
    }),
    { log },
  );
});

afterAll(async () => {
  await collector?.stop();
  await service?.stop();
  await Promise.allSettled([nodesBus?.close(), gateway?.bus.close(), receiver?.close(), lambda?.close()]);
  await server?.dispose();
});

const identities = (from: number, to: number) => nodes.fleet.slice(from, to).map((n) => n.identity);
/** Nodes running the demo agent (cache nodes do not). */
const demoNodes = (count: number) =>
  nodes.fleet
    .filter((n) => n.agents.includes("demo"))
    .slice(0, count)
    .map((n) => n.identity);

async function okCount(id: string): Promise<number> {
  return (await recordOf(gateway.store, id)).counts.ok;
}

async function allResults(store: JobStore, id: string): Promise<JobResult[]> {
  const out: JobResult[] = [];
  for await (const result of store.results(await recordOf(store, id))) out.push(result);
  return out;
}

describe("async jobs end to end, replies from real member nodes", () => {
  it("replies are stored as they come; at the deadline the silent node is no_reply and the callback is delivered once", async () => {
    const answering = identities(0, 20);
    const request = await asyncRequest(
      gateway.store,
      gateway.bus,
      nodes.client,
      { agent: "rpcutil", action: "ping" },
      {
        targets: [...answering, "ghost.example.net"],
        timeout_ms: 1500,
        callback: { kind: "url", url: receiver.url },
      },
    );
    await request.sendTo([...answering, "ghost.example.net"]);
    await waitUntil("the callback", () => receiver.deliveries.length > 0);
    const job = await recordOf(gateway.store, request.job.id);
    expect(job).toMatchObject({
      state: "timed_out",
      settled: true,
      counts: { ok: 20, failed: 0, no_reply: 1, unexpected: 0 },
    });
    const results = await allResults(gateway.store, job.id);
    expect(results).toHaveLength(21);
    expect(results.find((r) => r.status === "no_reply")?.identity).toBe("ghost.example.net");
    expect(results.filter((r) => r.status === "ok").every((r) => (r.data as { pong: number }).pong > 0)).toBe(
      true,
    );

    const [delivery] = receiver.deliveries;
    expect(delivery).toMatchObject({ id: `job_${job.id}`, status: 200, verified: true });
    const body = JSON.parse(delivery!.body);
    expect(body.data).toMatchObject({
      id: job.id,
      state: "timed_out",
      counts: { ok: 20, no_reply: 1, outstanding: 0 },
    });
    await waitUntil(
      "the attempt to be recorded",
      async () => (await recordOf(gateway.store, job.id)).callback?.status === "delivered",
    );
    expect((await recordOf(gateway.store, job.id)).callback?.attempts).toHaveLength(1);
    // Nothing is left to do for this job, so it leaves the run index, and no second delivery comes.
    await waitUntil("the run index to forget the job", async () => {
      for await (const run of gateway.store.runIndex()) if (run.id === job.id) return false;
      return true;
    });
    expect(receiver.deliveries).toHaveLength(1);
  });

  it("a job completes as soon as every target answered, and its Lambda callback gets the same summary", async () => {
    const targets = demoNodes(10);
    const request = await asyncRequest(
      gateway.store,
      gateway.bus,
      nodes.client,
      { agent: "demo", action: "fail", data: { message: "broken on purpose" } },
      { targets, timeout_ms: 60_000, callback: { kind: "lambda", function_name: "job-finished" } },
    );
    await request.sendTo(targets);
    await waitUntil("the Lambda invocation", () =>
      lambda.invocations.some((i) => i.payload.includes(request.job.id)),
    );
    const job = await recordOf(gateway.store, request.job.id);
    expect(job).toMatchObject({ state: "complete", counts: { ok: 0, failed: 10, no_reply: 0 } });
    const invocation = lambda.invocations.find((i) => i.payload.includes(request.job.id))!;
    expect(invocation).toMatchObject({ invocationType: "Event", signed: true });
    expect(JSON.parse(invocation.payload).data).toMatchObject({
      id: job.id,
      state: "complete",
      counts: { failed: 10 },
    });
    await waitUntil("the handler to run", () => lambdaEvents.length > 0);
    const results = await allResults(gateway.store, job.id);
    expect(results.every((r) => r.status === "failed" && r.statusmsg === "broken on purpose")).toBe(true);
  });

  it("per-node data over the job's limit is stored cut, flagged, with its original size", async () => {
    const targets = demoNodes(2);
    const request = await asyncRequest(
      gateway.store,
      gateway.bus,
      nodes.client,
      { agent: "demo", action: "echo", data: { blob: "x".repeat(5000) } },
      { targets, timeout_ms: 60_000, max_data_bytes: 1000 },
    );
    await request.sendTo(targets);
    await waitUntil("the job", async () => (await recordOf(gateway.store, request.job.id)).settled);
    for (const result of await allResults(gateway.store, request.job.id)) {
      expect(result.truncated).toBe(true);
      expect(result.original_size).toBeGreaterThan(5000);
      expect(typeof result.data === "string" && result.data.length).toBe(1000);
      expect(result.data as string).toMatch(/^\{"blob":"xxx/);
    }
  });

  // Issue 13, finding 13: a client on the collective answers first, in a target's name and in the name of
  // a node that was not asked. v1 replies are hashed, not signed: the forgery cannot be refused, but the
  // job shows it.
  it("a forged reply published before the node's own makes the job show a conflict, and a stranger's is unexpected", async () => {
    const [victim, other] = identities(0, 2) as [string, string];
    const request = await asyncRequest(
      gateway.store,
      gateway.bus,
      nodes.client,
      { agent: "rpcutil", action: "ping" },
      { targets: [victim, other], timeout_ms: 60_000 },
    );
    const replyTo = jobReplySubject(COLLECTIVE, nodes.client.callerid, request.job.id);
    // The forger needs only the request id and the reply subject, both on the wire.
    const same = await signedRequest(
      nodes,
      { agent: "rpcutil", action: "ping" },
      replyTo,
      request.job.request_id,
    );
    const [template] = await repliesOf(nodes, same.body, [victim]);
    gateway.bus.publish(replyTo, await forgedReply(template!.body, { data: '{"pong":1}' }));
    gateway.bus.publish(replyTo, await forgedReply(template!.body, { sender: "intruder.example.net" }));
    await gateway.bus.flush();
    await waitUntil("the forgeries to be stored", async () => (await okCount(request.job.id)) === 2);

    await request.sendTo([victim, other]);
    await waitUntil("the job to settle", async () => (await recordOf(gateway.store, request.job.id)).settled);
    const job = await recordOf(gateway.store, request.job.id);
    expect(job).toMatchObject({
      state: "complete",
      counts: { ok: 3, failed: 0, no_reply: 0, unexpected: 1, conflicts: 1 },
      conflicting: [victim],
    });
    const results = await allResults(gateway.store, job.id);
    // The first reply is the result: here the forgery, which the conflict makes visible.
    expect(results.find((r) => r.identity === victim)?.data).toEqual({ pong: 1 });
    expect(results.find((r) => r.identity === "intruder.example.net")).toMatchObject({ unexpected: true });
    expect(collector.collector.stats.conflicts).toBeGreaterThanOrEqual(1);
  });

  it("the same Idempotency-Key from the same caller returns the same job, never a second run", async () => {
    const create = () =>
      gateway.store.create(
        {
          request_id: "r",
          caller: CALLER,
          collective: "mcollective",
          agent: "rpcutil",
          action: "ping",
          timeout_ms: 60_000,
        },
        { idempotencyKey: "gh-delivery-72d3162e", fingerprint: "sha256:aa" },
      );
    const outcomes = await Promise.all([create(), create(), create()]);
    const ids = new Set(outcomes.map((o) => ("job" in o ? o.job.id : o.jobId)));
    expect(ids.size).toBe(1);
    expect(outcomes.filter((o) => o.outcome === "created")).toHaveLength(1);
    expect((await create()).outcome).toBe("existing");
    const changed = await gateway.store.create(
      {
        request_id: "r",
        caller: CALLER,
        collective: "mcollective",
        agent: "rpcutil",
        action: "ping",
        timeout_ms: 60_000,
      },
      { idempotencyKey: "gh-delivery-72d3162e", fingerprint: "sha256:bb" },
    );
    expect(changed.outcome).toBe("conflict");
  });

  it("a callback receiver that is down, then failing, then up: every attempt recorded, delivered once", async () => {
    await receiver.down();
    const before = receiver.deliveries.length;
    const targets = identities(20, 21);
    const request = await asyncRequest(
      gateway.store,
      gateway.bus,
      nodes.client,
      { agent: "rpcutil", action: "ping" },
      { targets, timeout_ms: 60_000, callback: { kind: "url", url: receiver.url } },
    );
    await request.sendTo(targets);
    await waitUntil(
      "two refused attempts",
      async () => ((await recordOf(gateway.store, request.job.id)).callback?.attempts.length ?? 0) >= 2,
    );
    receiver.answer(503);
    await receiver.up();
    await waitUntil(
      "the delivery",
      async () => (await recordOf(gateway.store, request.job.id)).callback?.status === "delivered",
    );
    const callback = (await recordOf(gateway.store, request.job.id)).callback!;
    const attempts = callback.attempts;
    expect(attempts.length).toBeGreaterThanOrEqual(4);
    expect(attempts.slice(0, -2).every((a) => !a.ok && a.outcome === "connection_failed" && !a.error)).toBe(
      true,
    );
    expect(attempts.at(-2)).toMatchObject({ ok: false, outcome: "http_error", status: 503 });
    expect(attempts.at(-1)).toMatchObject({ ok: true, outcome: "delivered", status: 200 });
    // The backoff doubled: each wait is longer than the one before.
    const gaps = attempts.slice(1).map((a, i) => Date.parse(a.at) - Date.parse(attempts[i]!.at));
    expect(gaps[1]!).toBeGreaterThan(gaps[0]!);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const received = receiver.deliveries.slice(before);
    expect(received.map((d) => d.status)).toEqual([503, 200]);
    expect(received.every((d) => d.id === `job_${request.job.id}` && d.verified)).toBe(true);
  });
});

describe("the job API over the real store", () => {
  const http = () => {
    const app = new Hono();
    app.route(
      "/",
      jobRoutes({
        store: gateway.store,
        callerKeyId: (c) => c.req.header("x-test-key"),
        authorize: creatorOnly,
      }),
    );
    return app;
  };

  it("SSE streams replies as they arrive, and a reconnect with Last-Event-ID picks up where it left off", async () => {
    const targets = identities(21, 29);
    const request = await asyncRequest(
      gateway.store,
      gateway.bus,
      nodes.client,
      { agent: "rpcutil", action: "ping" },
      { targets, timeout_ms: 60_000 },
    );
    await request.sendTo(targets.slice(0, 4));
    const first = await http().request(`/v1/jobs/${request.job.id}/events`, {
      headers: { "x-test-key": CALLER },
    });
    const reader = first.body!.getReader();
    let text = "";
    while ((text.match(/event: result/g) ?? []).length < 4)
      text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const seen = [...text.matchAll(/id: (\d+)\nevent: result\ndata: (.*)\n/g)];
    expect(seen).toHaveLength(4);

    await request.sendTo(targets.slice(4));
    const resumed = await http().request(`/v1/jobs/${request.job.id}/events`, {
      headers: { "x-test-key": CALLER, "last-event-id": seen.at(-1)![1]! },
    });
    const rest = await resumed.text();
    const later = [...rest.matchAll(/event: result\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!).identity);
    const earlier = seen.map((m) => JSON.parse(m[2]!).identity);
    expect(later).toHaveLength(4);
    expect(new Set([...earlier, ...later])).toEqual(new Set(targets));
    expect(rest).toMatch(/id: end\nevent: end\ndata: .*"state":"complete"/);
  });

  it("pages through 10,000 results in order, and filters them by status", async () => {
    const all = Array.from({ length: 10_000 }, (_, i) => `node${String(i).padStart(5, "0")}.example.net`);
    const outcome = await gateway.store.create({
      request_id: "big",
      caller: CALLER,
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
      targets: all,
      timeout_ms: 60_000,
    });
    if (outcome.outcome !== "created") throw new Error(outcome.outcome);
    const id = outcome.job.id;
    // Published straight onto the bucket's stream without waiting for each acknowledgement: this test is
    // about reading 10,000 results back, and this writes them in a fraction of the time.
    const result = (identity: string, i: number): StoredResult => ({
      identity,
      status: i % 10 === 0 ? "failed" : "ok",
      statuscode: i % 10 === 0 ? 1 : 0,
      statusmsg: i % 10 === 0 ? "Aborted" : "OK",
      data: { i },
      received_at: new Date().toISOString(),
    });
    const before = (await gateway.store.bucket.status()).entries;
    for (const [i, identity] of all.entries()) {
      const subject = `$KV.${DEFAULT_BUCKET}.${resultKey(id, identity)}`;
      if (!gateway.bus.publish(subject, JSON.stringify(result(identity, i))))
        throw new Error("publish refused");
    }
    await gateway.bus.flush();
    await waitUntil(
      "10,000 stored results",
      async () => (await gateway.store.bucket.status()).entries >= before + 10_000,
    );
    const ended = await endJob(gateway.store, id, "deadline");
    expect(ended).toMatchObject({ state: "complete", counts: { ok: 9000, failed: 1000, no_reply: 0 } });

    const seen: string[] = [];
    let path = `/v1/jobs/${id}?limit=1000`;
    let pages = 0;
    for (;;) {
      const response = await http().request(path, { headers: { "x-test-key": CALLER } });
      const body = await response.json();
      pages++;
      seen.push(...body.results.map((r: StoredResult) => r.identity));
      const link = response.headers.get("link");
      if (link === null) break;
      path = link.slice(1, link.indexOf(">"));
    }
    expect(pages).toBe(10);
    expect(seen).toHaveLength(10_000);
    expect(new Set(seen)).toEqual(new Set(all));
    const failed = await (
      await http().request(`/v1/jobs/${id}?status=failed&limit=1000`, { headers: { "x-test-key": CALLER } })
    ).json();
    expect(failed.results).toHaveLength(1000);
    expect(failed.next_cursor).toBeNull();
  }, 60_000);
});
