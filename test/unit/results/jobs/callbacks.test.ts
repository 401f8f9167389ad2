import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CALLBACK_EVENT_TYPE,
  callbackMessage,
  callbackSender,
  claimAttempt,
  httpCallbackSender,
  type RetryPolicy,
  recordAttempt,
  retryDelay,
} from "../../../../lib/results/jobs/callbacks.ts";
import { lambdaCallbackSender } from "../../../../lib/results/jobs/lambda.ts";
import {
  type CallbackTarget,
  decideEnd,
  type JobRecord,
  newJobRecord,
} from "../../../../lib/results/jobs/model.ts";
import { newJobId } from "../../../../lib/results/jobs/subjects.ts";
import { newWebhookSecret } from "../../../../lib/results/jobs/webhook.ts";
import { type LambdaApi, startLambdaApi } from "../../../support/lambda-api.ts";
import { newJob, type Receiver, startReceiver } from "./support.ts";

const POLICY: RetryPolicy = {
  baseDelayMs: 1000,
  maxDelayMs: 8000,
  maxAttempts: 4,
  jitter: 0,
  leaseMs: 30_000,
};
const SECRET = newWebhookSecret();

function endedJob(callback: CallbackTarget): JobRecord {
  const record = newJobRecord(newJobId(), newJob({ request_id: "r1", targets: ["a"], callback }), 0, 1);
  return decideEnd(
    { ...record, counts: { ok: 1, failed: 0, no_reply: 0, unexpected: 0 } },
    "complete",
    10_000,
  );
}

describe("retry schedule and attempt bookkeeping", () => {
  it("doubles the wait after each failure, up to the cap, less up to `jitter` of it", () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(n, POLICY))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(retryDelay(2, { ...POLICY, jitter: 0.5 }, () => 1)).toBe(1000);
    expect(retryDelay(2, { ...POLICY, jitter: 0.5 }, () => 0)).toBe(2000);
  });

  it("an attempt is leased to one collector, only when due", () => {
    const job = endedJob({ kind: "url", url: "https://hooks.example/a" });
    const claimed = claimAttempt(job, 10_000, POLICY);
    expect(claimed?.callback?.lease_until).toBe("1970-01-01T00:00:40.000Z");
    expect(claimAttempt(claimed!, 20_000, POLICY)).toBeUndefined();
    expect(claimAttempt(claimed!, 40_000, POLICY)).toBeDefined();
    expect(
      claimAttempt(
        { ...job, callback: { ...job.callback!, next_attempt_at: "1970-01-01T00:01:00.000Z" } },
        10_000,
        POLICY,
      ),
    ).toBeUndefined();
    const running = newJobRecord(
      newJobId(),
      newJob({ request_id: "r", callback: { kind: "url", url: "https://x" } }),
      0,
      1,
    );
    expect(claimAttempt(running, 10_000, POLICY)).toBeUndefined();
  });

  it("failures are recorded and rescheduled, until a success, or until the attempts run out", () => {
    let job = claimAttempt(endedJob({ kind: "url", url: "https://hooks.example/a" }), 10_000, POLICY)!;
    job = recordAttempt(
      job,
      { ok: false, status: 503, error: "HTTP 503" },
      { startedAt: 10_000, durationMs: 5 },
      POLICY,
    )!;
    expect(job.callback).toMatchObject({
      status: "pending",
      lease_until: null,
      next_attempt_at: "1970-01-01T00:00:11.005Z",
      attempts: [{ attempt: 1, ok: false, status: 503, error: "HTTP 503", duration_ms: 5 }],
    });
    const delivered = recordAttempt(
      job,
      { ok: true, status: 204 },
      { startedAt: 12_000, durationMs: 3 },
      POLICY,
    )!;
    expect(delivered.callback).toMatchObject({
      status: "delivered",
      delivered_at: "1970-01-01T00:00:12.003Z",
    });
    expect(delivered.callback?.attempts).toHaveLength(2);
    let failing = job;
    for (let i = 0; i < 3; i++)
      failing = recordAttempt(
        failing,
        { ok: false, error: "refused" },
        { startedAt: 20_000, durationMs: 1 },
        POLICY,
      )!;
    expect(failing.callback).toMatchObject({ status: "failed", next_attempt_at: null });
    expect(failing.callback?.attempts).toHaveLength(4);
    const gone = recordAttempt(
      job,
      { ok: false, status: 410, final: true },
      { startedAt: 1, durationMs: 1 },
      POLICY,
    )!;
    expect(gone.callback?.status).toBe("failed");
  });

  it("the message is the summary without delivery details, the same bytes on every attempt", () => {
    const job = endedJob({ kind: "url", url: "https://hooks.example/a", secret: SECRET });
    const first = callbackMessage(job);
    const later = recordAttempt(job, { ok: false }, { startedAt: 1, durationMs: 1 }, POLICY)!;
    expect(callbackMessage(later)).toEqual(first);
    expect(first.id).toBe(`job_${job.id}`);
    const body = JSON.parse(first.body);
    expect(body).toMatchObject({
      type: CALLBACK_EVENT_TYPE,
      timestamp: job.finished_at,
      data: { id: job.id, state: "complete" },
    });
    expect(body.data.callback).toBeUndefined();
    expect(first.body).not.toContain("whsec_");
  });
});

describe("URL callbacks", () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver(SECRET);
  });
  afterAll(() => receiver.close());

  it("post the message with Standard Webhooks headers the receiver can verify", async () => {
    const send = httpCallbackSender({ secret: SECRET, allowHttp: true });
    const job = endedJob({ kind: "url", url: receiver.url });
    const message = callbackMessage(job);
    expect(await send({ kind: "url", url: receiver.url }, message)).toEqual({ ok: true, status: 200 });
    const delivery = receiver.deliveries.at(-1)!;
    expect(delivery).toMatchObject({ id: message.id, body: message.body, verified: true });
  });

  it("a target's own secret wins over the collector's", async () => {
    const own = newWebhookSecret();
    const send = httpCallbackSender({ secret: own, allowHttp: true });
    await send({ kind: "url", url: receiver.url, secret: SECRET }, { id: "job_a", body: "{}" });
    expect(receiver.deliveries.at(-1)?.verified).toBe(true);
  });

  it("non-2xx answers fail, and 410 Gone fails for good", async () => {
    const send = httpCallbackSender({ secret: SECRET, allowHttp: true });
    receiver.answer(500, 410, 302);
    const target = { kind: "url" as const, url: receiver.url };
    expect(await send(target, { id: "job_a", body: "{}" })).toEqual({
      ok: false,
      status: 500,
      error: "HTTP 500",
    });
    expect(await send(target, { id: "job_a", body: "{}" })).toMatchObject({
      ok: false,
      status: 410,
      final: true,
    });
    expect(await send(target, { id: "job_a", body: "{}" })).toMatchObject({ ok: false, status: 302 });
  });

  it("refuses plain http unless allowed, and URLs without a secret", async () => {
    const strict = httpCallbackSender({ secret: SECRET });
    expect(await strict({ kind: "url", url: receiver.url }, { id: "job_a", body: "{}" })).toMatchObject({
      ok: false,
      final: true,
    });
    const secretless = httpCallbackSender({ allowHttp: true });
    expect(await secretless({ kind: "url", url: receiver.url }, { id: "job_a", body: "{}" })).toMatchObject({
      ok: false,
      final: true,
      error: "no signing secret for this callback",
    });
  });

  it("a receiver that is down is a failed attempt with the reason", async () => {
    await receiver.down();
    const send = httpCallbackSender({ secret: SECRET, allowHttp: true });
    const outcome = await send({ kind: "url", url: receiver.url }, { id: "job_a", body: "{}" });
    await receiver.up();
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/ECONNREFUSED/);
  });
});

describe("Lambda callbacks through the real SDK", () => {
  let api: LambdaApi;
  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = "AKIDEXAMPLETEST";
    process.env.AWS_SECRET_ACCESS_KEY = "test-secret-key";
    process.env.AWS_EC2_METADATA_DISABLED = "true";
    api = await startLambdaApi({ "job-done": () => ({}) });
  });
  afterAll(() => api.close());

  it("invoke the function asynchronously with the message as its event, signed", async () => {
    const lambda = lambdaCallbackSender({ region: "eu-west-1", endpoint: api.url });
    const send = callbackSender({ lambda }).send;
    const job = endedJob({ kind: "lambda", function_name: "job-done", qualifier: "live" });
    const message = callbackMessage(job);
    expect(await send({ kind: "lambda", function_name: "job-done", qualifier: "live" }, message)).toEqual({
      ok: true,
      status: 202,
    });
    lambda.close();
    expect(api.invocations.at(-1)).toEqual({
      functionName: "job-done",
      qualifier: "live",
      invocationType: "Event",
      payload: message.body,
      signed: true,
    });
  });

  it("retries a failing Invoke API inside the attempt, and reports an unknown function", async () => {
    const lambda = lambdaCallbackSender({ region: "eu-west-1", endpoint: api.url });
    api.failNext(1);
    const before = api.invocations.length;
    expect(
      (await lambda.send({ kind: "lambda", function_name: "job-done" }, { id: "job_a", body: "{}" })).ok,
    ).toBe(true);
    expect(api.invocations.length).toBe(before + 1);
    const missing = await lambda.send({ kind: "lambda", function_name: "nope" }, { id: "job_a", body: "{}" });
    lambda.close();
    expect(missing).toMatchObject({ ok: false, status: 404 });
    expect(missing.error).toMatch(/ResourceNotFoundException/);
  });

  it("a kind without a sender fails for good", async () => {
    const outcome = await callbackSender({}).send(
      { kind: "lambda", function_name: "x" },
      { id: "job_a", body: "{}" },
    );
    expect(outcome).toMatchObject({ ok: false, final: true });
  });
});
