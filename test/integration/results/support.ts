import { type ClientIdentity, directPacket, signRpcRequest } from "../../../lib/client/request.ts";
import type { Logger } from "../../../lib/log/log.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { nodeSubject } from "../../../lib/protocol/subjects.ts";
import { encodeTransport } from "../../../lib/protocol/transport.ts";
import { type CollectorConfig, collectorConfigFrom } from "../../../lib/results/jobs/config.ts";
import { DEFAULT_BUCKET } from "../../../lib/results/jobs/keys.ts";
import type { JobRecord, NewJob } from "../../../lib/results/jobs/model.ts";
import { type CreateOptions, JobStore } from "../../../lib/results/jobs/store.ts";
import { jobReplySubject } from "../../../lib/results/jobs/subjects.ts";
import type { MessageBus, NatsBus } from "../../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import type { NatsServer } from "../../support/nats-server.ts";
import { CALLER, COLLECTIVE, type Nodes } from "../../unit/results/jobs/support.ts";

export const RETENTION_MS = 3_600_000;
/** The callback seal key the test gateways and collectors share (base64 of 32 bytes). */
export const TEST_SEAL_KEY = "dGVzdCBzZWFsIGtleSBvZiB0aGlydHktdHdvIGJ5dGU=";

/**
 * Collector settings for tests: quick sweeps and retries, http callbacks allowed, and private addresses
 * too, as every receiver in the tests listens on 127.0.0.1.
 */
export function collectorConfig(
  server: NatsServer,
  overrides: Record<string, unknown> = {},
): CollectorConfig {
  const parsed = collectorConfigFrom({
    servers: [server.url],
    name: "collector-test",
    retentionMs: RETENTION_MS,
    sweepIntervalMs: 100,
    callbackBackoffMs: 100,
    callbackTimeoutMs: 2000,
    allowHttpCallbacks: true,
    allowPrivateCallbacks: true,
    callbackSealKey: TEST_SEAL_KEY,
    ...overrides,
  });
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.config;
}

/** Collects log lines, so a test can show them when it fails, and stays quiet when it passes. */
export function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log: Logger = (level, msg, fields) => {
    lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  };
  return Object.assign(log, { lines });
}

export async function gatewaySide(server: NatsServer): Promise<{ bus: NatsBus; store: JobStore }> {
  const bus = await connectNats({ servers: server.url, name: "gateway-test" });
  const bucket = await NatsKvBucket.open(bus.connection, { name: DEFAULT_BUCKET, ttlMs: RETENTION_MS });
  return { bus, store: new JobStore(bucket) };
}

export async function nodesOn(
  server: NatsServer,
  nodes: Nodes,
): Promise<{ bus: NatsBus; service: NodeService }> {
  const bus = await connectNats({ servers: server.url, name: "nodes-test" });
  const service = serveNodes(bus, nodes.host);
  await bus.flush();
  return { bus, service };
}

export interface AsyncRequest {
  job: JobRecord;
  /** Publishes the request to some of the targets, as the gateway would after the 202. */
  sendTo(identities: readonly string[]): Promise<void>;
}

/**
 * What the gateway does for an async request: sign it, create its job (before anything is published), and
 * point the request's reply-to at the collectors.
 */
export async function asyncRequest(
  store: JobStore,
  bus: MessageBus,
  client: ClientIdentity,
  call: { agent: string; action: string; data?: Record<string, unknown> },
  job: Omit<NewJob, "request_id" | "caller" | "collective" | "agent" | "action">,
  options: CreateOptions = {},
): Promise<AsyncRequest> {
  const signed = await signRpcRequest(client, { collective: COLLECTIVE, ...call });
  const outcome = await store.create(
    {
      request_id: signed.request.envelope.requestid,
      caller: CALLER,
      collective: COLLECTIVE,
      agent: call.agent,
      action: call.action,
      ...job,
    },
    options,
  );
  if (outcome.outcome !== "created") throw new Error(`job not created: ${outcome.outcome}`);
  const replyTo = jobReplySubject(COLLECTIVE, client.callerid, outcome.job.id);
  const body = encodeTransport(directPacket(signed, { replyTo, sender: client.senderid }));
  return {
    job: outcome.job,
    async sendTo(identities) {
      for (const identity of identities)
        if (!bus.publish(nodeSubject(COLLECTIVE, identity), body)) throw new Error("publish refused");
      await bus.flush();
    },
  };
}

export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function recordOf(store: JobStore, id: string): Promise<JobRecord> {
  const found = await store.get(id);
  if (found === undefined) throw new Error(`job ${id} is gone`);
  return found.record;
}
