// The Lambda deliverable itself: dist's single-file bundle is built, zipped, unpacked by Info-ZIP's unzip
// (as another tool would read it) and loaded, and its `handler` is invoked with API Gateway HTTP API (v2) and Function URL events signed for
// their public URLs, against a real federation.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { buildLambda } from "../../../infra/build.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { signHttpRequest } from "../../../lib/security/http/mod.ts";
import { signStripe } from "../../../lib/security/webhooks/mod.ts";
import { testPki } from "../../support/pki.ts";
import { freePort } from "../../support/ports.ts";
import { collectorConfig, memoryLog } from "../results/support.ts";
import { apiGatewayV2Event, functionUrlEvent, type HttpCall, lambdaContext } from "./lambda-events.ts";
import { CLUSTER, type Federation, startFederation, type TestKeys, testKeys } from "./support.ts";

interface LambdaResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}
type Handler = (event: unknown, context: unknown) => Promise<LambdaResult>;
type StreamHandler = (event: unknown, stream: unknown, context: unknown) => Promise<void>;

let dir: string;
let federation: Federation;
let keys: TestKeys;
let handler: Handler;
let stream: StreamHandler;
let monitorUrl: string;
let zipEntries: string[];
let collector: RunningCollector;
let indexBytes: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-lambda-"));
  const monitorPort = await freePort();
  monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const [built, fed, generated, pki] = await Promise.all([
    buildLambda(join(dir, "dist")),
    startFederation(20, { jetstream: true, federationConfig: `http: "127.0.0.1:${monitorPort}"` }),
    testKeys(),
    testPki(),
  ]);
  federation = fed;
  indexBytes = built.bytes;
  keys = generated;
  collector = await startCollector(collectorConfig(federation.federation), { log: memoryLog() });
  // zipinfo's short listing: "-rw-r--r--  6.3 unx  1533615 b- defN 80-Jan-01 00:00 index.mjs" per entry.
  const listing = execFileSync("/usr/bin/unzip", ["-Z", built.zip], { encoding: "utf8" });
  zipEntries = listing
    .split("\n")
    .filter((line) => /^-[rwx-]{9} /.test(line))
    .map((line) => line.split(/\s+/))
    .map((fields) => `${fields[0]} ${fields.at(-1)}`);
  const code = join(dir, "task");
  // unzip checks every entry's CRC as it extracts.
  execFileSync("/usr/bin/unzip", ["-q", built.zip, "-d", code]);
  Object.assign(process.env, {
    CHORIA_EDGE_GATEWAY_NATS_SERVERS: federation.federation.url,
    CHORIA_EDGE_GATEWAY_CLUSTERS: `${CLUSTER}=mcollective`,
    CHORIA_EDGE_GATEWAY_CERT_PEM: pki.gateway.certPem,
    CHORIA_EDGE_GATEWAY_KEY_PEM: pki.gateway.keyPem,
    CHORIA_EDGE_GATEWAY_KEYS_JSON: keys.json,
    CHORIA_EDGE_GATEWAY_CONNECT_TIMEOUT: "500",
    CHORIA_EDGE_GATEWAY_JOBS: "on",
    CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT: TRIGGERS,
    LAMBDA_TEST_STRIPE_SECRET: STRIPE_SECRET,
  });
  // As the AWS SDK's invoke store leaves it in any process that loads the SDK: an object without the runtime's functions.
  (globalThis as { awslambda?: object }).awslambda ??= {};
  ({ handler, stream } = (await import(pathToFileURL(join(code, "index.mjs")).href)) as {
    handler: Handler;
    stream: StreamHandler;
  });
}, 60_000);

afterAll(async () => {
  await collector?.stop();
  await federation?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function signedCall(url: string, body: Record<string, unknown>, key = keys.admin): Promise<HttpCall> {
  const text = JSON.stringify({ cluster: CLUSTER, ...body });
  const headers = await signHttpRequest({
    method: "POST",
    url,
    headers: { "content-type": "application/json", "user-agent": "choria-edge-test" },
    body: text,
    key,
  });
  return { method: "POST", url, headers: Object.fromEntries(headers), body: text };
}

const API_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1/rpc";
const STRIPE_SECRET = "whsec_lambda_test_endpoint_secret";
// A Stripe event runs rpcutil#ping on the node its metadata names, answered with Stripe's usual 200.
const TRIGGERS = `
triggers:
  - name: paid
    verify: { scheme: stripe, secrets_env: [LAMBDA_TEST_STRIPE_SECRET] }
    policy: { clusters: [${CLUSTER}], collectives: ["*"], agents: [rpcutil], actions: ["rpcutil#*"] }
    when:
      - { path: type, equals: payment_intent.succeeded }
    inputs:
      node: { from: payload.data.object.metadata.node, pattern: "^[a-z0-9.-]+$" }
    request: { cluster: ${CLUSTER}, agent: rpcutil, action: ping, nodes: ["\${inputs.node}"] }
    locks: []
    respond: { status: 200, body: { received: true } }
`;
const FUNCTION_URL = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/v1/rpc";

describe("the Lambda bundle", () => {
  it("is index.mjs and the chunks it loads in the zip, with source maps and licences, readable by the runtime's user", () => {
    expect(zipEntries).toContain("-rw-r--r-- index.mjs");
    const modules = zipEntries.filter((entry) => entry.endsWith(".mjs"));
    expect(modules.length).toBeGreaterThan(1);
    for (const module of modules) expect(zipEntries).toContain(`${module}.map`);
    // The gateway is in the chunks, imported by the first invocation: a cold start's import is only the
    // handlers and hono's Lambda adapter (which the streaming export needs at load time), a few KiB.
    expect(indexBytes).toBeLessThan(16 * 1024);
    for (const entry of zipEntries) expect(entry).toMatch(/^-rw-r--r-- [\w.-]+\.mjs(\.map|\.LEGAL\.txt)?$/);
  });

  it("loads outside Lambda's runtime (where the AWS SDK leaves an empty awslambda), its `stream` saying why it cannot run", async () => {
    await expect(stream({}, {}, lambdaContext())).rejects.toThrow(
      "response streaming needs Lambda's Node.js runtime",
    );
  });

  it("answers an API Gateway v2 event: discovery and replies through the federation", async () => {
    const nodes = federation.fleet.filter((n) => n.agents.includes("rpcutil")).length;
    const event = apiGatewayV2Event(await signedCall(API_URL, { agent: "rpcutil", action: "ping" }));
    const result = await handler(event, lambdaContext());
    expect(result.statusCode).toBe(200);
    expect(result.headers["content-type"]).toMatch(/^application\/json/);
    const body = JSON.parse(result.body) as { summary: Record<string, unknown>; replies: unknown[] };
    expect(body.summary).toMatchObject({ discovered: nodes, ok: nodes, no_reply: 0, done: "expected" });
  });

  it("answers a Function URL event with a base64 body, and a signature for that URL", async () => {
    const identity = federation.fleet[0]!.identity;
    const call = await signedCall(FUNCTION_URL, { agent: "rpcutil", action: "ping", nodes: [identity] });
    const result = await handler(functionUrlEvent(call), lambdaContext());
    expect(result.statusCode).toBe(200);
    const body = JSON.parse(result.body) as { replies: { identity: string }[] };
    expect(body.replies.map((r) => r.identity)).toEqual([identity]);
  });

  it("refuses a signature made for another URL, and a replayed event", async () => {
    const call = await signedCall(API_URL, { agent: "rpcutil", action: "ping", nodes: ["n1"] });
    const moved = await handler(functionUrlEvent({ ...call, url: FUNCTION_URL }), lambdaContext());
    expect(moved.statusCode).toBe(401);
    expect(JSON.parse(moved.body).type).toBe(`${PROBLEM_BASE}bad-signature`);

    const once = await signedCall(FUNCTION_URL, {
      agent: "rpcutil",
      action: "ping",
      nodes: [federation.fleet[1]!.identity],
    });
    expect((await handler(functionUrlEvent(once), lambdaContext())).statusCode).toBe(200);
    const replay = await handler(functionUrlEvent(once), lambdaContext());
    expect(replay.statusCode).toBe(401);
    expect(replay.headers["content-type"]).toBe("application/problem+json");
    expect(JSON.parse(replay.body).type).toBe(`${PROBLEM_BASE}replay`);
  });

  it("answers an async request with 202 and serves the job the collector fills in", async () => {
    const identities = federation.fleet.slice(0, 3).map((n) => n.identity);
    const call = await signedCall(API_URL, {
      agent: "rpcutil",
      action: "ping",
      nodes: identities,
      mode: "async",
    });
    const accepted = await handler(apiGatewayV2Event(call), lambdaContext());
    expect(accepted.statusCode).toBe(202);
    const location = accepted.headers.location!;
    expect(location).toMatch(/^\/v1\/jobs\//);

    const jobUrl = new URL(location, API_URL).href;
    const deadline = Date.now() + 10_000;
    let job: { state: string; counts: Record<string, number> };
    do {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const headers = await signHttpRequest({ method: "GET", url: jobUrl, headers: {}, key: keys.admin });
      const read = await handler(
        apiGatewayV2Event({ method: "GET", url: jobUrl, headers: Object.fromEntries(headers), body: "" }),
        lambdaContext(),
      );
      expect(read.statusCode).toBe(200);
      ({ job } = JSON.parse(read.body) as { job: typeof job });
    } while (job.state === "running" && Date.now() < deadline);
    expect(job.state).toBe("complete");
    expect(job.counts).toMatchObject({ ok: 3, no_reply: 0 });
  });

  it("runs a signed Stripe event through its trigger", async () => {
    const body = JSON.stringify({
      id: "evt_lambda_1",
      type: "payment_intent.succeeded",
      data: { object: { metadata: { node: federation.fleet[0]!.identity } } },
    });
    const url = API_URL.replace("/v1/rpc", "/v1/hooks/paid");
    const headers = {
      "content-type": "application/json",
      "stripe-signature": await signStripe(STRIPE_SECRET, Math.floor(Date.now() / 1000), body),
    };
    const result = await handler(apiGatewayV2Event({ method: "POST", url, headers, body }), lambdaContext());
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ received: true });
    expect(result.headers.location).toMatch(/^\/v1\/jobs\//);
  });

  it("reuses one NATS connection across invocations", async () => {
    const connz = (await (await fetch(`${monitorUrl}/connz`)).json()) as { connections: { name?: string }[] };
    expect(connz.connections.filter((c) => c.name === "choria-edge-gateway-lambda")).toHaveLength(1);
  });

  it("answers 503 once its NATS server is gone", async () => {
    await federation.federation.stop();
    const call = await signedCall(API_URL, { agent: "rpcutil", action: "ping", nodes: ["n1"] });
    const result = await handler(apiGatewayV2Event(call), lambdaContext());
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body).type).toBe(`${PROBLEM_BASE}upstream-unavailable`);
  });
});
