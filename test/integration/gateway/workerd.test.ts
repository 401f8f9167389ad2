// The real Worker (wrangler.toml, functions/cloudflare.ts) in workerd through `wrangler dev`, speaking NATS
// over WebSocket to the federation nats-server's websocket listener, end to end to simulated nodes. Both
// connection modes: the default Durable Object holding one connection, and a connection per request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { signHttpRequest } from "../../../lib/security/http/mod.ts";
import { signGithub } from "../../../lib/security/webhooks/mod.ts";
import { testPki } from "../../support/pki.ts";
import { startWranglerDev, type WranglerDev } from "../../workerd/wrangler-dev.ts";
import { collectorConfig, memoryLog } from "../results/support.ts";
import {
  CLUSTER,
  type Federation,
  parseEvents,
  signedInit,
  startFederation,
  type TestKeys,
  testKeys,
} from "./support.ts";

let federation: Federation;
let keys: TestKeys;
let durable: WranglerDev;
let perRequest: WranglerDev;
let collector: RunningCollector;

const GITHUB_HOOK_SECRET = "a webhook secret for the worker";
// A GitHub push, verified (WebCrypto), evaluated, locked and run as a job inside workerd.
// One line of JSON: the value travels through a dotenv file, where a line in single quotes is taken as
// it is (no `${...}` expansion).
const TRIGGERS = JSON.stringify({
  triggers: [
    {
      name: "push",
      verify: { scheme: "github", secrets_env: ["GITHUB_HOOK_SECRET"] },
      policy: { clusters: [CLUSTER], collectives: ["*"], agents: ["rpcutil"], actions: ["rpcutil#*"] },
      when: [{ header: "x-github-event", equals: "push" }],
      inputs: { node: { from: "payload.node", pattern: "^[a-z0-9.-]+$" } },
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a trigger template, filled in by the gateway
      request: { cluster: CLUSTER, agent: "rpcutil", action: "ping", nodes: ["${inputs.node}"] },
    },
  ],
});

beforeAll(async () => {
  const pki = await testPki();
  [federation, keys] = await Promise.all([startFederation(20, { jetstream: true }), testKeys()]);
  collector = await startCollector(collectorConfig(federation.federation), { log: memoryLog() });
  const vars = (mode: string) => ({
    CHORIA_EDGE_GATEWAY_NATS_SERVERS: federation.federation.wsUrl!,
    CHORIA_EDGE_GATEWAY_CLUSTERS: `${CLUSTER}=mcollective`,
    CHORIA_EDGE_GATEWAY_NATS_CONNECTION: mode,
    // Generous: the first connection from workerd on a loaded 2-core machine can take over a second.
    CHORIA_EDGE_GATEWAY_CONNECT_TIMEOUT: "3000",
    CHORIA_EDGE_GATEWAY_CERT_PEM: pki.gateway.certPem,
    CHORIA_EDGE_GATEWAY_KEY_PEM: pki.gateway.keyPem,
    CHORIA_EDGE_GATEWAY_KEYS_JSON: keys.json,
  });
  // One after the other: two workerd start-ups at once crowd a two-core machine.
  durable = await startWranglerDev({
    ...vars("durable-object"),
    CHORIA_EDGE_GATEWAY_JOBS: "on",
    CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT: TRIGGERS,
    GITHUB_HOOK_SECRET,
  });
  perRequest = await startWranglerDev(vars("per-request"));
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([durable?.stop(), perRequest?.stop()]);
  await collector?.stop();
  await federation?.stop();
});

async function rpc(dev: WranglerDev, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const url = `${dev.url}/v1/rpc`;
  return fetch(url, await signedInit(url, { cluster: CLUSTER, ...body }, keys.admin, headers));
}

describe("the Worker in workerd", () => {
  it("Durable Object mode: discovery and replies over NATS WebSocket, end to end", async () => {
    const nodes = federation.fleet.filter((n) => n.agents.includes("demo"));
    const res = await rpc(durable, { agent: "demo", action: "echo", data: { hello: "edge" } });
    if (res.status !== 200) throw new Error(await res.text());
    const result = (await res.json()) as {
      summary: Record<string, unknown>;
      replies: { identity: string; data: Record<string, unknown> }[];
    };
    expect(result.summary).toMatchObject({ discovered: nodes.length, ok: nodes.length, done: "expected" });
    expect(result.replies.map((r) => r.identity).sort()).toEqual(nodes.map((n) => n.identity).sort());
    expect(result.replies.every((r) => r.data.hello === "edge" && r.data.identity === r.identity)).toBe(true);
  });

  it("Durable Object mode: streams ndjson from workerd", async () => {
    const nodes = federation.fleet.slice(0, 3).map((n) => n.identity);
    const res = await rpc(
      durable,
      { agent: "rpcutil", action: "ping", nodes },
      { accept: "application/x-ndjson" },
    );
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const events = parseEvents(await res.text(), "ndjson");
    expect(events.map((e) => e.type)).toEqual(["start", "reply", "reply", "reply", "summary"]);
  });

  it("Durable Object mode: one instance sees every request, so a replay is refused", async () => {
    const url = `${durable.url}/v1/rpc`;
    const init = await signedInit(
      url,
      { cluster: CLUSTER, agent: "rpcutil", action: "ping", nodes: ["n1"], timeout: 0.2 },
      keys.admin,
    );
    expect((await fetch(url, init)).status).toBe(200);
    const replay = await fetch(url, init);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}replay`);
  });

  it("Durable Object mode: an async request answers 202, and the job fills in over NATS WebSocket", async () => {
    const nodes = federation.fleet.slice(0, 3).map((n) => n.identity);
    const res = await rpc(durable, { agent: "rpcutil", action: "ping", nodes, mode: "async" });
    expect(res.status).toBe(202);
    const location = res.headers.get("location")!;
    const url = `${durable.url}${location}`;
    const deadline = Date.now() + 10_000;
    let job: { state: string; counts: Record<string, number> };
    do {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const headers = await signHttpRequest({ method: "GET", url, headers: {}, key: keys.admin });
      const read = await fetch(url, { headers });
      expect(read.status).toBe(200);
      ({ job } = (await read.json()) as { job: typeof job });
    } while (job.state === "running" && Date.now() < deadline);
    expect(job.state).toBe("complete");
    expect(job.counts).toMatchObject({ ok: 3, no_reply: 0 });
  });

  it("Durable Object mode: a signed GitHub push runs its trigger as a job", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main", node: federation.fleet[0]!.identity });
    const res = await fetch(`${durable.url}/v1/hooks/push`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": crypto.randomUUID(),
        "x-hub-signature-256": await signGithub(GITHUB_HOOK_SECRET, body),
      },
      body,
    });
    if (res.status !== 202) throw new Error(await res.text());
    const url = `${durable.url}${res.headers.get("location")!}`;
    const deadline = Date.now() + 10_000;
    let job: { state: string; counts: Record<string, number>; trigger: Record<string, string> };
    do {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const headers = await signHttpRequest({ method: "GET", url, headers: {}, key: keys.auditor });
      ({ job } = (await (await fetch(url, { headers })).json()) as { job: typeof job });
    } while (job.state === "running" && Date.now() < deadline);
    expect(job).toMatchObject({
      state: "complete",
      counts: { ok: 1 },
      trigger: { trigger: "push", sender: "github" },
    });
  });

  it("per-request mode: a connection of its own for the request, answered in full", async () => {
    const identity = federation.fleet[2]!.identity;
    const res = await rpc(perRequest, {
      agent: "rpcutil",
      action: "ping",
      nodes: [identity, "ghost.example.net"],
      timeout: 0.5,
    });
    expect(res.status).toBe(200);
    const result = (await res.json()) as { summary: Record<string, unknown>; no_reply: string[] };
    expect(result.summary).toMatchObject({ ok: 1, no_reply: 1, done: "timeout" });
    expect(result.no_reply).toEqual(["ghost.example.net"]);
    expect(res.headers.get("server-timing")).toMatch(/auth;dur=\d+.*nats;dur=\d+/);
  });

  it("answers 503 in both modes once the websocket listener is gone", async () => {
    await federation.federation.stop();
    for (const dev of [durable, perRequest]) {
      const res = await rpc(dev, { agent: "rpcutil", action: "ping", nodes: ["n1"] });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}upstream-unavailable`);
    }
  });
});
