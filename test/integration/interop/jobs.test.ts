// Matrix 5: an async job and a webhook trigger whose requests run on real go-choria servers (and a
// simulated node beside them), stored by our collector and read back through the gateway.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { DataStore, DEFAULT_DATA_BUCKET } from "../../../lib/data/mod.ts";
import { signHttpRequest } from "../../../lib/security/http/mod.ts";
import { signGithub } from "../../../lib/security/webhooks/mod.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { signedInit } from "../gateway/support.ts";
import { collectorConfig, memoryLog } from "../results/support.ts";
import { CLUSTER, type InteropGateway, type Stack, startInteropGateway, startStack } from "./support.ts";

const PUBLIC = "https://interop.example.com";
const SECRET = "interop github secret, long enough";
const TARGETS = ["go1.example.net", "go2.example.net", "go3.example.net", "sim1.example.net"];

const TRIGGERS = `
triggers:
  - name: facts
    verify: { scheme: github, secrets_env: [INTEROP_GITHUB_SECRET] }
    policy: { clusters: [${CLUSTER}], collectives: ["*"], agents: [rpcutil], actions: ["rpcutil#*"] }
    when:
      - { header: x-github-event, equals: push }
    inputs:
      fact: { from: payload.fact, pattern: "^[a-z.]+$" }
      sha: { from: payload.after, pattern: "^[0-9a-f]{40}$" }
    request:
      cluster: ${CLUSTER}
      agent: rpcutil
      action: get_fact
      data: { fact: "\${inputs.fact}" }
      nodes: [${TARGETS.join(", ")}]
      timeout: 5
    locks: [interop]
    on_complete:
      - { put: interop/last-sha, value: "\${inputs.sha}", when_state: [complete] }
`;

let stack: Stack;
let edge: InteropGateway;
let collector: RunningCollector;
const collectorLog = memoryLog();

beforeAll(async () => {
  process.env.INTEROP_GITHUB_SECRET = SECRET;
  stack = await startStack({ ourBrokers: 1 });
  collector = await startCollector(collectorConfig(stack.federation), { log: collectorLog });
  edge = await startInteropGateway(stack, { jobs: true, triggers: TRIGGERS, publicUrl: PUBLIC });
}, 60_000);

afterAll(async () => {
  await edge?.gateway.close();
  await collector?.stop();
  await stack?.stop();
});

interface JobAnswer {
  job: { id: string; state: string; counts: Record<string, number> };
  results: { identity: string; status: string; statuscode: number; data: Record<string, unknown> }[];
}

async function settledJob(path: string): Promise<JobAnswer> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const headers = await signHttpRequest({
      method: "GET",
      url: `${PUBLIC}${path}`,
      headers: {},
      key: edge.keys.auditor,
    });
    const response = await fetch(`${edge.gateway.url}${path}`, { headers });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as JobAnswer;
    if (answer.job.state !== "running") return answer;
    if (Date.now() > deadline) throw new Error(`job still running:\n${collectorLog.lines.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("jobs on real servers", () => {
  it("an async request: 202, then the job completes with every real server's reply stored", async () => {
    const body = {
      cluster: CLUSTER,
      agent: "rpcutil",
      action: "ping",
      nodes: TARGETS,
      timeout: 5,
      mode: "async",
    };
    const response = await fetch(
      `${edge.gateway.url}/v1/rpc`,
      await signedInit(`${PUBLIC}/v1/rpc`, body, edge.keys.admin),
    );
    expect(response.status).toBe(202);
    const job = await settledJob(response.headers.get("location")!);
    expect(job.job.state).toBe("complete");
    expect(job.job.counts).toMatchObject({ ok: TARGETS.length, failed: 0, no_reply: 0 });
    expect(job.results.map((r) => r.identity).sort()).toEqual(TARGETS);
    for (const result of job.results) expect(typeof result.data.pong).toBe("number");
  });

  it("a GitHub push runs the trigger on the real servers; its on_complete write lands", async () => {
    const sha = "0123456789abcdef0123456789abcdef01234567";
    const body = JSON.stringify({ ref: "refs/heads/main", after: sha, fact: "country" });
    const response = await fetch(`${edge.gateway.url}/v1/hooks/facts`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": await signGithub(SECRET, body),
      },
      body,
    });
    expect(response.status).toBe(202);
    const job = await settledJob(response.headers.get("location")!);
    expect(job.job.state).toBe("complete");
    expect(Object.fromEntries(job.results.map((r) => [r.identity, r.data.value]))).toEqual({
      "go1.example.net": "de",
      "go2.example.net": "nl",
      "go3.example.net": "nl",
      "sim1.example.net": "de",
    });
    const bus = await connectNats({ servers: stack.federation.url, name: "interop-data", timeoutMs: 2000 });
    try {
      const data = new DataStore(
        await NatsKvBucket.open(bus.connection, { name: DEFAULT_DATA_BUCKET, ttlMs: 0 }),
      );
      const deadline = Date.now() + 5000;
      let stored: string | undefined;
      while (stored !== sha && Date.now() < deadline) {
        stored = (await data.get("interop/last-sha"))?.value;
        if (stored !== sha) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(stored).toBe(sha);
    } finally {
      await bus.close();
    }
  });
});
