import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CALLBACK_EVENT_TYPE,
  callbackMessage,
  callbackSender,
  claimAttempt,
  type RetryPolicy,
  recordAttempt,
  retryDelay,
} from "../../../../lib/results/jobs/callbacks.ts";
import { httpCallbackSender } from "../../../../lib/results/jobs/http-callback.ts";
import { lambdaCallbackSender } from "../../../../lib/results/jobs/lambda.ts";
import {
  type CallbackTarget,
  decideEnd,
  emptyCounts,
  type JobRecord,
  jobView,
  newJobRecord,
} from "../../../../lib/results/jobs/model.ts";
import { importSealKey, newSealKey, sealSecret } from "../../../../lib/results/jobs/sealed-secret.ts";
import { newJobId } from "../../../../lib/results/jobs/subjects.ts";
import { newWebhookSecret } from "../../../../lib/results/jobs/webhook.ts";
import { type LambdaApi, startLambdaApi } from "../../../support/lambda-api.ts";
import { testPki } from "../../../support/pki.ts";
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
  return decideEnd({ ...record, counts: { ...emptyCounts(), ok: 1 } }, "complete", 10_000);
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
      { ok: false, outcome: "http_error", status: 503 },
      { startedAt: 10_000, durationMs: 5 },
      POLICY,
    )!;
    expect(job.callback).toMatchObject({
      status: "pending",
      lease_until: null,
      next_attempt_at: "1970-01-01T00:00:11.005Z",
      attempts: [{ attempt: 1, ok: false, outcome: "http_error", status: 503, duration_ms: 5 }],
    });
    const delivered = recordAttempt(
      job,
      { ok: true, outcome: "delivered", status: 204 },
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
        { ok: false, outcome: "connection_failed" },
        { startedAt: 20_000, durationMs: 1 },
        POLICY,
      )!;
    expect(failing.callback).toMatchObject({ status: "failed", next_attempt_at: null });
    expect(failing.callback?.attempts).toHaveLength(4);
    const gone = recordAttempt(
      job,
      { ok: false, outcome: "http_error", status: 410, final: true },
      { startedAt: 1, durationMs: 1 },
      POLICY,
    )!;
    expect(gone.callback?.status).toBe("failed");
  });

  it("the message is the summary without delivery details, the same bytes on every attempt", () => {
    const job = endedJob({ kind: "url", url: "https://hooks.example/a", secret: SECRET });
    const first = callbackMessage(job);
    const later = recordAttempt(
      job,
      { ok: false, outcome: "timeout" },
      { startedAt: 1, durationMs: 1 },
      POLICY,
    )!;
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
  // The receiver listens on 127.0.0.1: only an operator who allows private addresses may reach it.
  const local = { secret: SECRET, allowHttp: true, allowPrivate: true };

  it("post the message with Standard Webhooks headers the receiver can verify", async () => {
    const send = httpCallbackSender(local);
    const job = endedJob({ kind: "url", url: receiver.url });
    const message = callbackMessage(job);
    expect(await send({ kind: "url", url: receiver.url }, message)).toEqual({
      ok: true,
      outcome: "delivered",
      status: 200,
    });
    const delivery = receiver.deliveries.at(-1)!;
    expect(delivery).toMatchObject({ id: message.id, body: message.body, verified: true });
  });

  it("a target's own secret wins over the collector's", async () => {
    const own = newWebhookSecret();
    const send = httpCallbackSender({ ...local, secret: own });
    await send({ kind: "url", url: receiver.url, secret: SECRET }, { id: "job_a", body: "{}" });
    expect(receiver.deliveries.at(-1)?.verified).toBe(true);
  });

  it("open a secret the gateway sealed into the job, and sign with it; without the key, fail for good", async () => {
    const key = await importSealKey(newSealKey());
    const secret_sealed = await sealSecret(key, SECRET, receiver.url);
    const target = { kind: "url" as const, url: receiver.url, secret_sealed };
    const other = newWebhookSecret();
    const send = httpCallbackSender({ ...local, secret: other, sealKey: key });
    expect(await send(target, { id: "job_s", body: "{}" })).toMatchObject({ ok: true });
    expect(receiver.deliveries.at(-1)).toMatchObject({ id: "job_s", verified: true });
    // Without the key (or with another one) the collector's own secret is not used in its place.
    for (const sender of [
      httpCallbackSender({ ...local, secret: other }),
      httpCallbackSender({ ...local, secret: other, sealKey: await importSealKey(newSealKey()) }),
    ])
      expect(await sender(target, { id: "job_s", body: "{}" })).toMatchObject({
        ok: false,
        outcome: "invalid_target",
        final: true,
      });
  });

  it("non-2xx answers are http_error with the status, and 410 Gone fails for good", async () => {
    const send = httpCallbackSender(local);
    receiver.answer(500, 410, 302);
    const target = { kind: "url" as const, url: receiver.url };
    expect(await send(target, { id: "job_a", body: "{}" })).toEqual({
      ok: false,
      outcome: "http_error",
      status: 500,
    });
    expect(await send(target, { id: "job_a", body: "{}" })).toMatchObject({
      ok: false,
      outcome: "http_error",
      status: 410,
      final: true,
    });
    expect(await send(target, { id: "job_a", body: "{}" })).toMatchObject({ ok: false, status: 302 });
  });

  it("refuses plain http unless allowed, and URLs without a secret", async () => {
    const strict = httpCallbackSender({ secret: SECRET, allowPrivate: true });
    expect(await strict({ kind: "url", url: receiver.url }, { id: "job_a", body: "{}" })).toMatchObject({
      ok: false,
      outcome: "invalid_target",
      final: true,
    });
    const secretless = httpCallbackSender({ allowHttp: true, allowPrivate: true });
    expect(await secretless({ kind: "url", url: receiver.url }, { id: "job_a", body: "{}" })).toMatchObject({
      ok: false,
      outcome: "invalid_target",
      final: true,
    });
  });

  it("a receiver that is down is connection_failed, without the error's text", async () => {
    await receiver.down();
    const send = httpCallbackSender(local);
    const outcome = await send({ kind: "url", url: receiver.url }, { id: "job_a", body: "{}" });
    await receiver.up();
    expect(outcome).toMatchObject({ ok: false, outcome: "connection_failed" });
    expect(outcome).not.toHaveProperty("error");
  });
});

describe("URL callbacks never reach private addresses unless the operator allows them", () => {
  let receiver: Receiver;
  let nats: Server;
  let silent: Server;
  beforeAll(async () => {
    receiver = await startReceiver(SECRET);
    // What the NATS port answers an HTTP request with: its INFO line, then it closes.
    nats = await tcpServer((socket) => socket.end('INFO {"server_id":"NATSSECRET","version":"2.10"}\r\n'));
    silent = await tcpServer(() => {});
  });
  afterAll(async () => {
    await receiver.close();
    nats.close();
    silent.close();
  });
  const portOf = (server: Server) => (server.address() as AddressInfo).port;

  it("refuses loopback, private, link-local and metadata addresses, by name or literal, and sends nothing", async () => {
    const send = httpCallbackSender({ secret: SECRET, allowHttp: true });
    const port = new URL(receiver.url).port;
    const before = receiver.deliveries.length;
    for (const url of [
      receiver.url,
      `http://localhost:${port}/hook`,
      `http://[::1]:${port}/hook`,
      `http://2130706433:${port}/hook`,
      `http://0x7f.1:${port}/hook`,
      `http://127.1:${port}/hook`,
      `http://[::ffff:127.0.0.1]:${port}/hook`,
      "http://169.254.169.254/latest/meta-data/",
      "http://10.0.0.1/",
      "http://100.100.100.200/",
      "http://[fd00:ec2::254]/",
      `http://127.0.0.1:${portOf(nats)}/`,
    ]) {
      const outcome = await send({ kind: "url", url }, { id: "job_a", body: "{}" });
      expect(outcome, url).toEqual({
        ok: false,
        outcome: "refused_address",
        final: true,
        detail: expect.any(String),
      });
    }
    expect(receiver.deliveries.length).toBe(before);
  });

  it("checks every address a name resolves to, and connects to the address it checked", async () => {
    const port = new URL(receiver.url).port;
    const asked: string[] = [];
    const resolver = (answers: string[]) => async (host: string) => {
      asked.push(host);
      return answers;
    };
    const mixed = httpCallbackSender({
      secret: SECRET,
      allowHttp: true,
      resolve: resolver(["93.184.216.34", "127.0.0.1"]),
    });
    expect(
      await mixed({ kind: "url", url: `http://hooks.example.com:${port}/hook` }, { id: "job_a", body: "{}" }),
    ).toMatchObject({ ok: false, outcome: "refused_address" });
    // A name that real DNS does not know reaches the receiver only through the checked answer; the Host
    // header still names it.
    const pinned = httpCallbackSender({
      secret: SECRET,
      allowHttp: true,
      allowPrivate: true,
      resolve: resolver(["127.0.0.1"]),
    });
    asked.length = 0;
    expect(
      await pinned(
        { kind: "url", url: `http://callbacks.invalid:${port}/hook` },
        { id: "job_b", body: "{}" },
      ),
    ).toMatchObject({ ok: true, outcome: "delivered" });
    expect(asked).toEqual(["callbacks.invalid"]);
    expect(receiver.deliveries.at(-1)).toMatchObject({
      id: "job_b",
      host: `callbacks.invalid:${port}`,
      verified: true,
    });
  });

  it("over TLS, verifies the certificate for the URL's name while connecting to the checked address", async () => {
    const pki = await testPki();
    const node = pki.nodes[0]!;
    const tls = createHttpsServer({ cert: node.certPem, key: node.keyPem }, (req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(204, { "x-host": req.headers.host ?? "" }).end());
    });
    await new Promise<void>((resolve) => tls.listen(0, "127.0.0.1", resolve));
    try {
      const port = (tls.address() as AddressInfo).port;
      const options = {
        secret: SECRET,
        allowPrivate: true,
        ca: pki.caPem,
        resolve: async () => ["127.0.0.1"],
      };
      const send = httpCallbackSender(options);
      expect(
        await send(
          { kind: "url", url: `https://${node.certname}:${port}/done` },
          { id: "job_c", body: "{}" },
        ),
      ).toMatchObject({ ok: true, outcome: "delivered", status: 204 });
      // The same address under a name the certificate does not carry: the TLS check fails.
      expect(
        await send(
          { kind: "url", url: `https://other.example.net:${port}/done` },
          { id: "job_c", body: "{}" },
        ),
      ).toMatchObject({ ok: false, outcome: "connection_failed" });
    } finally {
      tls.close();
    }
  });

  it("records an outcome class, never what the far end said", async () => {
    const send = httpCallbackSender({ secret: SECRET, allowHttp: true, allowPrivate: true, timeoutMs: 300 });
    const garbled = await send(
      { kind: "url", url: `http://127.0.0.1:${portOf(nats)}/` },
      { id: "job_a", body: "{}" },
    );
    expect(garbled).toMatchObject({ ok: false, outcome: "connection_failed" });
    const stalled = await send(
      { kind: "url", url: `http://127.0.0.1:${portOf(silent)}/` },
      { id: "job_a", body: "{}" },
    );
    expect(stalled).toMatchObject({ ok: false, outcome: "timeout" });
    const job = claimAttempt(endedJob({ kind: "url", url: "https://hooks.example/a" }), 10_000, POLICY)!;
    const recorded = recordAttempt(job, garbled, { startedAt: 10_000, durationMs: 5 }, POLICY)!;
    expect(recorded.callback?.attempts).toEqual([
      { attempt: 1, at: "1970-01-01T00:00:10.000Z", duration_ms: 5, ok: false, outcome: "connection_failed" },
    ]);
    expect(JSON.stringify(recorded)).not.toMatch(/NATSSECRET|INFO|HTTP\/1\.1|protocol/);
    expect(JSON.stringify(jobView(recorded))).not.toMatch(/NATSSECRET|INFO|protocol/);
  });
});

function tcpServer(onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createTcpServer(onConnection);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

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
      outcome: "delivered",
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
    expect(missing).toMatchObject({ ok: false, outcome: "lambda_error", status: 404 });
    expect(missing.detail).toMatch(/ResourceNotFoundException/);
  });

  it("a kind without a sender fails for good", async () => {
    const outcome = await callbackSender({}).send(
      { kind: "lambda", function_name: "x" },
      { id: "job_a", body: "{}" },
    );
    expect(outcome).toMatchObject({ ok: false, final: true });
  });
});
