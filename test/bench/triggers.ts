// Webhook trigger benchmarks (numbers, not pass/fail), all in this process, no I/O:
//  (a) verifying one delivery per sender scheme, with a realistic 7 KiB GitHub push body; GitHub through
//      @octokit/webhooks-methods beside the same HMAC check done with WebCrypto directly, as a ratio;
//  (b) evaluating a trigger (conditions, inputs with patterns and the shell-safe check, the rendered
//      request) for one delivery, and parsing a trigger file.
// BENCH_QUICK=1 divides the iterations by 10.
import { verify as octokitVerify } from "@octokit/webhooks-methods";
import { constantTimeEqual } from "../../lib/security/compare.ts";
import {
  signGithub,
  signSlack,
  signStandardV1,
  signStripe,
  verifyWebhook,
  type WebhookScheme,
} from "../../lib/security/webhooks/mod.ts";
import { evaluateTrigger } from "../../lib/triggers/mod.ts";
import { parseTriggerFile } from "../../lib/triggers/node.ts";

const quick = process.env.BENCH_QUICK === "1" ? 10 : 1;
const ITERATIONS = Math.floor(5000 / quick);
const SECRET = "a webhook secret of reasonable length";
const STANDARD_SECRET = `whsec_${btoa("standard webhooks benchmark secret")}`;
const STRIPE_SECRET = "whsec_benchmark_endpoint_secret";

// One body for every scheme: `id` and `event_id` are where Stripe and Slack keep their delivery ids.
const push = {
  id: "evt_1",
  event_id: "Ev1",
  ref: "refs/heads/main",
  after: "4f1b1e0c6a1f9b7d5c3e2a1908f7e6d5c4b3a291",
  repository: { full_name: "acme/site", description: "x".repeat(2000) },
  commits: Array.from({ length: 20 }, (_, n) => ({ id: `${n}`.padStart(40, "0"), message: "y".repeat(200) })),
};
const body = JSON.stringify(push);
const bytes = new TextEncoder().encode(body);

async function timeUs(run: () => Promise<unknown>, iterations = ITERATIONS): Promise<number> {
  for (let i = 0; i < Math.min(200, iterations); i++) await run();
  const started = performance.now();
  for (let i = 0; i < iterations; i++) await run();
  return ((performance.now() - started) * 1000) / iterations;
}

async function main(): Promise<void> {
  const now = new Date();
  const ts = Math.floor(now.getTime() / 1000);
  const deliveries: Record<WebhookScheme, { headers: Headers; secrets: string[] }> = {
    github: {
      headers: new Headers({
        "x-github-delivery": "d1",
        "x-hub-signature-256": await signGithub(SECRET, body),
      }),
      secrets: [SECRET],
    },
    "standard-webhooks": {
      headers: new Headers({
        "webhook-id": "msg_1",
        "webhook-timestamp": String(ts),
        "webhook-signature": await signStandardV1(STANDARD_SECRET, "msg_1", ts, body),
      }),
      secrets: [STANDARD_SECRET],
    },
    slack: {
      headers: new Headers({
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": await signSlack(SECRET, ts, body),
      }),
      secrets: [SECRET],
    },
    stripe: {
      headers: new Headers({ "stripe-signature": await signStripe(STRIPE_SECRET, ts, body) }),
      secrets: [STRIPE_SECRET],
    },
  };

  console.log(
    `(a) verifying one ${(bytes.byteLength / 1024).toFixed(1)} KiB delivery, ${ITERATIONS} times each`,
  );
  console.log("scheme                   µs/delivery");
  for (const [scheme, delivery] of Object.entries(deliveries) as [
    WebhookScheme,
    (typeof deliveries)[WebhookScheme],
  ][]) {
    const us = await timeUs(async () => {
      const verdict = await verifyWebhook(
        scheme,
        { secrets: delivery.secrets },
        { headers: delivery.headers, body: bytes },
        { now },
      );
      if (!verdict.ok) throw new Error(`${scheme}: ${verdict.detail}`);
    });
    console.log(`${scheme.padEnd(24)} ${us.toFixed(1).padStart(8)}`);
  }
  const signature = deliveries.github.headers.get("x-hub-signature-256")!;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const octokit = await timeUs(async () => {
    if (!(await octokitVerify(SECRET, body, signature))) throw new Error("octokit refused");
  });
  const direct = await timeUs(async () => {
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, bytes));
    const hex = `sha256=${Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    if (!constantTimeEqual(hex, signature)) throw new Error("direct refused");
  });
  console.log(
    `GitHub: @octokit/webhooks-methods ${octokit.toFixed(1)} µs, WebCrypto HMAC with an imported key ${direct.toFixed(1)} µs, ratio ${(octokit / direct).toFixed(2)}`,
  );

  const file = `
triggers:
  - name: deploy
    verify: { scheme: github, secrets_env: [S] }
    policy: { clusters: [dc1], collectives: ["*"], agents: [puppet], actions: ["puppet#runonce"] }
    when:
      - { header: x-github-event, equals: push }
      - { path: ref, equals: refs/heads/main }
      - { path: repository.full_name, matches: "^acme/" }
    inputs:
      sha: { from: payload.after, pattern: "^[0-9a-f]{40}$" }
      repo: { from: payload.repository.full_name, shellsafe: true, max_length: 140 }
      first: { from: "payload.commits[0].id", pattern: "^[0-9]+$" }
    request:
      cluster: dc1
      agent: puppet
      action: runonce
      data: { sha: "\${inputs.sha}", repo: "\${inputs.repo}", first: "\${inputs.first}" }
      filter: { fact: ["role=web"] }
`;
  const parsed = parseTriggerFile(file);
  if (!parsed.ok) throw new Error(parsed.message);
  const trigger = parsed.triggers.get("deploy")!;
  const headers = new Headers({ "x-github-event": "push" });
  const evaluate = await timeUs(async () => {
    const outcome = await evaluateTrigger(trigger, { payload: push, headers }, async () => undefined);
    if (outcome.kind !== "run") throw new Error(outcome.kind);
  });
  const load = await timeUs(async () => parseTriggerFile(file), Math.floor(ITERATIONS / 10));
  console.log("\n(b) triggers");
  console.log(`evaluate one delivery (3 conditions, 3 inputs, rendered request)  ${evaluate.toFixed(1)} µs`);
  console.log(`parse and check a one-trigger file                                  ${load.toFixed(1)} µs`);
  console.log(
    `JSON.parse of the delivery body, for scale                          ${(await timeUs(async () => JSON.parse(body))).toFixed(1)} µs`,
  );
}

await main();
