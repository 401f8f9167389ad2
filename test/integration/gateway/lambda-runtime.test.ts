// The Lambda bundle as Lambda runs it: dist's zip, unpacked, loaded by a runtime shim in its own process
// under each Node version Lambda offers (and this machine's), invoked through a local Invoke API by the AWS
// SDK. The `stream` export answers Function URL events in RESPONSE_STREAM mode; the proofs that it streams
// are causal or timed against the server's own deadlines, never just the final body.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvokeCommand, InvokeWithResponseStreamCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { buildLambda } from "../../../infra/build.ts";
import { signHttpRequest } from "../../../lib/security/http/mod.ts";
import { type LocalLambda, startLocalLambda } from "../../support/lambda-local.ts";
import { nodeRuntimes } from "../../support/node-runtimes.ts";
import { testPki } from "../../support/pki.ts";
import { collectorConfig, memoryLog } from "../results/support.ts";
import { apiGatewayV2Event, functionUrlEvent, type HttpCall } from "./lambda-events.ts";
import { CLUSTER, type Federation, startFederation, type TestKeys, testKeys } from "./support.ts";

const FUNCTION_URL = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws";
const API_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com";
const GHOST = "ghost.example.net";

let dir: string;
let taskRoot: string;
let federation: Federation;
let keys: TestKeys;
let collector: RunningCollector;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-lambda-runtime-"));
  const [built, fed, generated, pki] = await Promise.all([
    buildLambda(join(dir, "dist")),
    startFederation(5, { jetstream: true }),
    testKeys(),
    testPki(),
  ]);
  federation = fed;
  keys = generated;
  collector = await startCollector(collectorConfig(federation.federation), { log: memoryLog() });
  taskRoot = join(dir, "task");
  execFileSync("/usr/bin/unzip", ["-q", built.zip, "-d", taskRoot]);
  env = {
    CHORIA_EDGE_GATEWAY_NATS_SERVERS: federation.federation.url,
    CHORIA_EDGE_GATEWAY_CLUSTERS: `${CLUSTER}=mcollective`,
    CHORIA_EDGE_GATEWAY_CERT_PEM: pki.gateway.certPem,
    CHORIA_EDGE_GATEWAY_KEY_PEM: pki.gateway.keyPem,
    CHORIA_EDGE_GATEWAY_KEYS_JSON: keys.json,
    CHORIA_EDGE_GATEWAY_CONNECT_TIMEOUT: "2000",
    CHORIA_EDGE_GATEWAY_JOBS: "on",
  };
}, 90_000);

afterAll(async () => {
  await collector?.stop();
  await federation?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function signed(
  url: string,
  method: string,
  body?: Record<string, unknown>,
  accept = "application/json",
): Promise<HttpCall> {
  const text = body === undefined ? "" : JSON.stringify({ cluster: CLUSTER, ...body });
  const headers: Record<string, string> = { accept, "user-agent": "choria-edge-test" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const signedHeaders = await signHttpRequest({ method, url, headers, body: text, key: keys.admin });
  return { method, url, headers: Object.fromEntries(signedHeaders), body: text };
}

const localClient = (endpoint: string) =>
  new LambdaClient({
    endpoint,
    region: "eu-west-1",
    credentials: { accessKeyId: "AKIDLOCAL", secretAccessKey: "local" },
    maxAttempts: 1,
  });

interface Streamed {
  statusCode: number;
  headers: Record<string, string>;
  /** The body's text as the client received it, one piece per network read. */
  body: AsyncGenerator<string>;
}

/** Invokes with InvokeWithResponseStream and splits the HTTP integration prelude from the body. */
async function invokeStreaming(client: LambdaClient, name: string, event: unknown): Promise<Streamed> {
  const out = await client.send(
    new InvokeWithResponseStreamCommand({ FunctionName: name, Payload: JSON.stringify(event) }),
  );
  if (out.EventStream === undefined) throw new Error("no event stream");
  const events = out.EventStream[Symbol.asyncIterator]();
  const chunks = async function* () {
    for (;;) {
      const next = await events.next();
      if (next.done) return;
      if (next.value.InvokeComplete?.ErrorCode)
        throw new Error(`invoke: ${next.value.InvokeComplete.ErrorDetails}`);
      if (next.value.PayloadChunk?.Payload) yield Buffer.from(next.value.PayloadChunk.Payload);
    }
  };
  const source = chunks();
  let head = Buffer.alloc(0);
  let end = -1;
  while (end < 0) {
    const next = await source.next();
    if (next.done) throw new Error(`the stream ended inside its prelude: ${head}`);
    head = Buffer.concat([head, next.value]);
    end = head.indexOf(0);
  }
  if (!head.subarray(end, end + 8).equals(Buffer.alloc(8))) throw new Error("no 8-byte prelude delimiter");
  const metadata = JSON.parse(head.subarray(0, end).toString()) as {
    statusCode: number;
    headers: Record<string, string>;
  };
  const rest = head.subarray(end + 8);
  const decoder = new TextDecoder();
  const body = async function* () {
    if (rest.length > 0) yield decoder.decode(rest, { stream: true });
    for await (const chunk of source) yield decoder.decode(chunk, { stream: true });
  };
  return { ...metadata, body: body() };
}

/** Complete records (lines, or SSE frames without keep-alive comments), each with when it arrived. */
async function* records(body: AsyncGenerator<string>, separator: string) {
  let pending = "";
  for await (const text of body) {
    pending += text;
    let at = pending.indexOf(separator);
    while (at >= 0) {
      const record = pending.slice(0, at);
      pending = pending.slice(at + separator.length);
      if (record !== "" && !record.startsWith(":")) yield { record, at: performance.now() };
      at = pending.indexOf(separator);
    }
  }
}

/** The User-Agent the runtime shim sends, which names the Node version it runs on (as the real one does). */
const runsOn = (version: string) =>
  expect.stringMatching(`^aws-lambda-nodejs/v${version.replaceAll(".", "\\.")}-`);

const sseData = (frame: string) =>
  JSON.parse(frame.slice(frame.indexOf("data: ") + "data: ".length)) as Record<string, unknown>;

describe.each(nodeRuntimes())("the Lambda bundle under Node $label", (runtime) => {
  let streaming: LocalLambda;
  let buffered: LocalLambda;
  let streamClient: LambdaClient;
  let bufferClient: LambdaClient;

  beforeAll(async () => {
    if (runtime.missing) return;
    const common = { taskRoot, env, node: runtime.bin };
    [streaming, buffered] = await Promise.all([
      // Two environments: the SSE proof cancels a job while another invocation streams its events.
      startLocalLambda({ ...common, functionName: "gateway-url", handler: "index.stream", environments: 2 }),
      startLocalLambda({ ...common, functionName: "gateway-api", handler: "index.handler" }),
    ]);
    streamClient = localClient(streaming.endpoint);
    bufferClient = localClient(buffered.endpoint);
  }, 60_000);

  afterEach((context) => {
    if (context.task.result?.state === "fail")
      process.stderr.write(`${streaming?.logs()}${buffered?.logs()}`);
  });

  afterAll(async () => {
    streamClient?.destroy();
    bufferClient?.destroy();
    await Promise.all([streaming?.stop(), buffered?.stop()]);
  });

  it(`answers a buffered API Gateway event, in a runtime that is Node ${runtime.version}`, async () => {
    if (runtime.missing) throw new Error(runtime.missing);
    const call = await signed(`${API_URL}/v1/rpc`, "POST", { agent: "rpcutil", action: "ping" });
    const out = await bufferClient.send(
      new InvokeCommand({ FunctionName: "gateway-api", Payload: JSON.stringify(apiGatewayV2Event(call)) }),
    );
    expect(out.FunctionError).toBeUndefined();
    const result = JSON.parse(Buffer.from(out.Payload ?? []).toString()) as {
      statusCode: number;
      body: string;
    };
    expect(result.statusCode).toBe(200);
    const nodes = federation.fleet.filter((n) => n.agents.includes("rpcutil")).length;
    expect(JSON.parse(result.body).summary).toMatchObject({ ok: nodes, done: "expected" });
    expect(buffered.runtimeAgents()).toEqual([runsOn(runtime.version)]);
  });

  it("reports a start that fails (no caller keys) as the streamed invocation's error", async () => {
    if (runtime.missing) throw new Error(runtime.missing);
    const { CHORIA_EDGE_GATEWAY_KEYS_JSON: _, ...withoutKeys } = env;
    const broken = await startLocalLambda({
      taskRoot,
      env: { ...withoutKeys, CHORIA_EDGE_HOME: join(dir, "empty-home") },
      node: runtime.bin,
      functionName: "gateway-broken",
      handler: "index.stream",
    });
    const client = localClient(broken.endpoint);
    try {
      const call = await signed(`${FUNCTION_URL}/v1/rpc`, "POST", { agent: "rpcutil", action: "ping" });
      await expect(invokeStreaming(client, "gateway-broken", functionUrlEvent(call))).rejects.toThrow(
        /"errorMessage":"gateway settings: the caller keys document .* does not exist/,
      );
    } finally {
      client.destroy();
      await broken.stop();
    }
  });

  it("streams NDJSON replies through a Function URL: a reply arrives long before the summary is written", async () => {
    if (runtime.missing) throw new Error(runtime.missing);
    const identity = federation.fleet[0]?.identity ?? "";
    // The ghost never answers, so the summary cannot be written before the 3 s timeout runs out.
    const body = { agent: "rpcutil", action: "ping", nodes: [identity, GHOST], timeout: 3 };
    const call = await signed(`${FUNCTION_URL}/v1/rpc`, "POST", body, "application/x-ndjson");
    const response = await invokeStreaming(streamClient, "gateway-url", functionUrlEvent(call));
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^application\/x-ndjson/);
    const seen: { type: unknown; identity?: unknown; at: number }[] = [];
    for await (const { record, at } of records(response.body, "\n")) {
      const event = JSON.parse(record) as { type: unknown; identity?: unknown };
      seen.push({ type: event.type, identity: event.identity, at });
    }
    const reply = seen.find((e) => e.identity === identity && e.type === "reply");
    const summary = seen.at(-1);
    expect(summary?.type).toBe("summary");
    expect(reply).toBeDefined();
    expect((summary?.at ?? 0) - (reply?.at ?? 0)).toBeGreaterThan(1500);
    expect(streaming.runtimeAgents()).toEqual([runsOn(runtime.version)]);
  });

  it("streams a job's SSE events: the job is cancelled only after its first event reached the client", async () => {
    if (runtime.missing) throw new Error(runtime.missing);
    const identity = federation.fleet[1]?.identity ?? "";
    const body = { agent: "rpcutil", action: "ping", nodes: [identity, GHOST], timeout: 60, mode: "async" };
    const post = await signed(`${FUNCTION_URL}/v1/rpc`, "POST", body);
    const accepted = await invokeStreaming(streamClient, "gateway-url", functionUrlEvent(post));
    expect(accepted.statusCode).toBe(202);
    for await (const _ of accepted.body);
    const job = `${FUNCTION_URL}${accepted.headers.location}`;

    const watch = await signed(`${job}/events`, "GET", undefined, "text/event-stream");
    const events = await invokeStreaming(streamClient, "gateway-url", functionUrlEvent(watch));
    expect(events.headers["content-type"]).toBe("text/event-stream");
    const frames = records(events.body, "\n\n");
    const first = await frames.next();
    expect(first.done).toBe(false);
    expect(sseData(first.value?.record ?? "")).toMatchObject({ identity, status: "ok" });

    // Only now, with the first event in hand, is the job cancelled: a buffered answer would never get here.
    const cancel = await invokeStreaming(
      streamClient,
      "gateway-url",
      functionUrlEvent(await signed(job, "DELETE")),
    );
    expect(cancel.statusCode).toBe(200);
    for await (const _ of cancel.body);
    const rest: Record<string, unknown>[] = [];
    for await (const { record } of frames) rest.push(sseData(record));
    expect(rest.at(0)).toMatchObject({ identity: GHOST, status: "no_reply" });
    expect(rest.at(-1)).toMatchObject({ state: "cancelled" });
  });
});
