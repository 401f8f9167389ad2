// The JSON Schemas of the job answers (lib/results/jobs' JobView and JobResult are TypeScript types, not
// zod schemas) and the examples the OpenAPI document shows; a unit test checks real job answers against
// these schemas, so they cannot drift unseen.
import {
  CALLBACK_OUTCOMES,
  JOB_STATES,
  MAX_CONFLICTING_LISTED,
  RESULT_FILTERS,
} from "../results/jobs/mod.ts";

type Json = Record<string, unknown>;

const count = { type: "integer", minimum: 0 };
const time = { type: "string", format: "date-time" };
const nullable = (schema: Json) => ({ anyOf: [schema, { type: "null" }] });

const callbackView = {
  type: "object",
  required: ["kind", "target", "status", "attempts", "next_attempt_at", "delivered_at"],
  properties: {
    kind: { enum: ["url", "lambda"] },
    target: { type: "string", description: "The URL, or the Lambda function's name" },
    status: { enum: ["waiting", "pending", "delivered", "failed"] },
    attempts: {
      type: "array",
      items: {
        type: "object",
        required: ["attempt", "at", "duration_ms", "ok", "outcome"],
        properties: {
          attempt: { type: "integer", minimum: 1 },
          at: time,
          duration_ms: { type: "number", minimum: 0 },
          ok: { type: "boolean" },
          outcome: { enum: [...CALLBACK_OUTCOMES] },
          status: { type: "integer", description: "HTTP status of the receiver or of the Lambda Invoke API" },
        },
      },
    },
    next_attempt_at: nullable(time),
    delivered_at: nullable(time),
  },
};

export const JOB_SCHEMAS: Record<string, Json> = {
  Job: {
    type: "object",
    description: "An async job as the API shows it: no secrets; `counts` are final once `finished_at` is set",
    required: [
      "id",
      "request_id",
      "caller",
      "cluster",
      "collective",
      "agent",
      "action",
      "state",
      "created_at",
      "deadline_at",
      "finished_at",
      "expected",
      "counts",
      "conflicting",
      "callback",
      "trigger",
      "effects",
    ],
    properties: {
      id: { type: "string" },
      request_id: { type: "string" },
      caller: { type: "string", description: "Key id of the caller that created the job" },
      cluster: nullable({ type: "string" }),
      collective: { type: "string" },
      agent: { type: "string" },
      action: { type: "string" },
      state: { enum: [...JOB_STATES] },
      created_at: time,
      deadline_at: time,
      finished_at: nullable(time),
      expected: { ...nullable(count), description: "Replies that complete the job; null when unknown" },
      counts: {
        type: "object",
        required: ["ok", "failed", "no_reply", "unexpected", "conflicts", "outstanding"],
        properties: {
          ok: count,
          failed: count,
          no_reply: count,
          unexpected: count,
          conflicts: {
            ...count,
            description: "Identities that sent a second reply different from the stored one",
          },
          outstanding: nullable(count),
        },
      },
      conflicting: {
        type: "array",
        items: { type: "string" },
        maxItems: MAX_CONFLICTING_LISTED,
        description: `The first ${MAX_CONFLICTING_LISTED} identities counted in \`counts.conflicts\``,
      },
      discovery: {
        type: "object",
        description: "How discovery ended; present only when the request ran discovery",
        required: ["complete", "found", "reason"],
        properties: {
          complete: { type: "boolean" },
          found: count,
          reason: { enum: ["timeout", "stall", "cancelled"] },
        },
      },
      callback: nullable(callbackView),
      trigger: nullable({ type: "object", additionalProperties: { type: "string" } }),
      effects: nullable({
        type: "object",
        required: ["locks", "data_actions", "done"],
        properties: {
          locks: { type: "array", items: { type: "string" } },
          data_actions: count,
          done: { type: "boolean" },
        },
      }),
    },
  },
  JobResult: {
    type: "object",
    required: ["identity", "status", "statuscode", "statusmsg", "received_at", "seq"],
    properties: {
      identity: { type: "string" },
      status: { enum: RESULT_FILTERS.filter((f) => f !== "unexpected") },
      statuscode: nullable({ type: "integer" }),
      statusmsg: nullable({ type: "string" }),
      data: { description: "The reply's data; when `truncated`, the start of its JSON text" },
      truncated: { const: true },
      original_size: count,
      unexpected: { const: true, description: "The node was not one of the job's targets" },
      received_at: nullable(time),
      hash: {
        type: "string",
        contentEncoding: "base64",
        description: "SHA-256 of the reply's message, as the reply carries it; absent for no_reply",
      },
      seq: { ...count, description: "Orders results; the page cursor and the SSE event id" },
    },
  },
  JobPage: {
    type: "object",
    required: ["job", "results", "next_cursor"],
    properties: {
      job: { $ref: "#/components/schemas/Job" },
      results: { type: "array", items: { $ref: "#/components/schemas/JobResult" } },
      next_cursor: nullable({ type: "string" }),
    },
  },
};

const EXAMPLE_JOB = {
  id: "01JC7Z3Q8J6V1M5X4W2N9K0B7A",
  request_id: "5b0a3c4f6d2e4f8a9b1c0d2e3f4a5b6c",
  caller: "ops",
  cluster: "dc1",
  collective: "mcollective",
  agent: "rpcutil",
  action: "ping",
  state: "complete",
  created_at: "2026-01-05T10:00:00.000Z",
  deadline_at: "2026-01-05T10:00:10.000Z",
  finished_at: "2026-01-05T10:00:01.200Z",
  expected: 2,
  counts: { ok: 2, failed: 0, no_reply: 0, unexpected: 0, conflicts: 0, outstanding: 0 },
  conflicting: [],
  callback: null,
  trigger: null,
  effects: null,
};

const EXAMPLE_RESULT = {
  identity: "web1.example.net",
  status: "ok",
  statuscode: 0,
  statusmsg: "OK",
  data: { pong: 1767607200 },
  received_at: "2026-01-05T10:00:00.400Z",
  hash: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
  seq: 12,
};

export const EXAMPLES = {
  rpcRequest: {
    cluster: "dc1",
    agent: "rpcutil",
    action: "ping",
    filter: { identity: ["web1.example.net"] },
  },
  rpcResponse: {
    request_id: "5b0a3c4f6d2e4f8a9b1c0d2e3f4a5b6c",
    summary: {
      discovered: 1,
      expected: 1,
      ok: 1,
      failed: 0,
      no_reply: 0,
      unexpected: 0,
      conflicts: 0,
      discovery_ms: 310,
      elapsed_ms: 342,
      done: "expected",
    },
    replies: [
      { identity: "web1.example.net", statuscode: 0, statusmsg: "OK", data: { pong: 1767607200 }, ms: 28 },
    ],
    no_reply: [],
    unexpected: [],
    conflicting: [],
  },
  accepted: { job_id: EXAMPLE_JOB.id, status_url: `/v1/jobs/${EXAMPLE_JOB.id}` },
  jobPage: { job: EXAMPLE_JOB, results: [EXAMPLE_RESULT], next_cursor: null },
  jobList: { jobs: [EXAMPLE_JOB], next_cursor: null },
  job: { job: { ...EXAMPLE_JOB, state: "cancelled" } },
  events: `id: 12\nevent: result\ndata: ${JSON.stringify(EXAMPLE_RESULT)}\n\nid: end\nevent: end\ndata: ${JSON.stringify(EXAMPLE_JOB)}\n\n`,
  hook: { ref: "refs/heads/main", repository: { full_name: "acme/site" } },
  skipped: { skipped: true, reason: "condition ref == refs/heads/main did not hold" },
  health: { status: "ok", nats: "connected" },
};
