// The OpenAPI 3.1 description of the gateway, built from the zod schemas that validate requests and from
// the one problem catalogue: each operation lists the problem types it can answer with.
import * as z from "zod/mini";
import { rpcRequestBodySchema } from "../api/mod.ts";
import { JOB_STATES } from "../results/jobs/mod.ts";
import { LIST_PAGE, MAX_LIST_PAGE } from "./jobs.ts";
import { EXAMPLES, JOB_SCHEMAS } from "./openapi-schemas.ts";
import { PROBLEM_MEDIA_TYPE, PROBLEMS, type ProblemKind, problemType } from "./problems.ts";
import { problemSchema, rpcResponseSchema, streamEventSchema } from "./schema.ts";

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodMiniType, io: "input" | "output"): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function problemResponses(kinds: readonly ProblemKind[]): Json {
  const byStatus = new Map<number, ProblemKind[]>();
  for (const kind of kinds) {
    const { status } = PROBLEMS[kind];
    byStatus.set(status, [...(byStatus.get(status) ?? []), kind]);
  }
  const responses: Json = {};
  for (const [status, grouped] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: grouped.map((k) => `${PROBLEMS[k].title} (${problemType(k)})`).join("; "),
      content: { [PROBLEM_MEDIA_TYPE]: { schema: ref("Problem") } },
    };
  }
  return responses;
}

// What checking an RFC 9421 signature or a bearer token can answer (lib/gateway/http.ts).
const AUTHENTICATION: readonly ProblemKind[] = [
  "missing-credentials",
  "unknown-key",
  "key-expired",
  "bad-signature",
  "digest-mismatch",
  "missing-digest",
  "malformed-signature",
  "unsupported-algorithm",
  "insufficient-coverage",
  "stale",
  "replay",
  "replay-store-unavailable",
];

// What reading any request's body can answer, and what any request can fail with.
const EVERY_REQUEST: readonly ProblemKind[] = ["payload-too-large", "client-aborted", "internal"];

const security = [{ httpSignature: [] }, { bearer: [] }];
const jobId = { name: "id", in: "path", required: true, schema: { type: "string" } };
const jobLocation = { Location: { description: "/v1/jobs/<job id>", schema: { type: "string" } } };

const header = (name: string, description: string, schema: Json = { type: "string" }) => ({
  name,
  in: "header",
  description,
  schema,
});

// The query of a results page (lib/gateway/jobs.ts parsePageQuery).
const PAGE_QUERY: Json[] = [
  {
    name: "status",
    in: "query",
    description:
      "Only results with one of these statuses, comma separated (`unexpected`: repliers that were not targets)",
    schema: { type: "string" },
    example: "failed,no_reply",
  },
  { name: "limit", in: "query", description: "Results per page", schema: { type: "integer", minimum: 1 } },
  {
    name: "cursor",
    in: "query",
    description: "`next_cursor` of the page before",
    schema: { type: "string", pattern: "^[0-9]+$" },
  },
];

// What the built-in verifiers of trigger deliveries read (lib/security/webhooks); each trigger uses one.
const WEBHOOK_HEADERS: Json[] = [
  ["X-Hub-Signature-256", "GitHub: `sha256=<hex HMAC>` of the body"],
  ["X-GitHub-Delivery", "GitHub: the delivery id (idempotency)"],
  ["X-GitHub-Event", "GitHub: the event type"],
  ["webhook-id", "Standard Webhooks: the message id (idempotency)"],
  ["webhook-timestamp", "Standard Webhooks: seconds since the epoch"],
  ["webhook-signature", "Standard Webhooks: `v1,<base64 HMAC>` or `v1a,<base64 ed25519>`, space separated"],
  ["X-Slack-Signature", "Slack: `v0=<hex HMAC>`"],
  ["X-Slack-Request-Timestamp", "Slack: seconds since the epoch"],
  ["Stripe-Signature", "Stripe: `t=<seconds>,v1=<hex HMAC>`"],
  ["Signature", "RFC 9421 triggers: as on /v1/rpc, with `Signature-Input` and `Content-Digest`"],
].map(([name, description]) => header(name ?? "", description ?? ""));

const rpcOperation = {
  operationId: "rpc",
  summary: "Run a Choria RPC request through a federation and collect the replies",
  security,
  parameters: [
    header(
      "Accept",
      "`application/json` (default) answers once everything is in; `application/x-ndjson` or `text/event-stream` streams a `start` event, each reply as it arrives, then the summary",
    ),
    header(
      "Prefer",
      "`respond-async` runs a `sync` request as `async` (Node gateway with jobs on): 202 and a job",
    ),
    header(
      "Idempotency-Key",
      "requests that run as jobs: the same key from the same caller returns the same job instead of running the request again",
      { type: "string", maxLength: 255 },
    ),
  ],
  requestBody: {
    required: true,
    content: { "application/json": { schema: ref("RpcRequest"), example: EXAMPLES.rpcRequest } },
  },
  responses: {
    "200": {
      description:
        "The request ran; the summary says how it ended. A sync JSON request that could outlast the gateway's wait budget runs as a job (when jobs are on): its answer then also carries `job_id`",
      content: {
        "application/json": { schema: ref("RpcResponse"), example: EXAMPLES.rpcResponse },
        "application/x-ndjson": { schema: ref("StreamEvent") },
        "text/event-stream": { schema: ref("StreamEvent") },
      },
    },
    "202": {
      description:
        "Async, or a sync request that spent the wait budget: the job was created and the request sent; read it at `Location`",
      headers: jobLocation,
      content: {
        "application/json": {
          schema: {
            type: "object",
            properties: { job_id: { type: "string" }, status_url: { type: "string" } },
            required: ["job_id", "status_url"],
          },
          example: EXAMPLES.accepted,
        },
      },
    },
    ...problemResponses([
      "invalid-body",
      "idempotency-conflict",
      "async-unavailable",
      ...AUTHENTICATION,
      "forbidden",
      "unknown-cluster",
      "unknown-collective",
      "unsupported-media-type",
      "upstream-unavailable",
      "timeout",
      "method-not-allowed",
      ...EVERY_REQUEST,
    ]),
  },
};

const hookOperation = {
  operationId: "hook",
  summary: "Deliver a webhook to a trigger: verified the way its sender signs, then run as an async job",
  description:
    "The trigger file names each trigger's verifier (GitHub `X-Hub-Signature-256`, Standard Webhooks `v1`/`v1a`, Slack `v0`, Stripe `Stripe-Signature`, or RFC 9421 with the gateway's keys), conditions, inputs and request. A repeated delivery id answers with its first job.",
  // Verified by the trigger's own scheme, which the security schemes below cannot express.
  security: [{}, ...security],
  parameters: [
    { name: "name", in: "path", required: true, schema: { type: "string" }, example: "deploy" },
    ...WEBHOOK_HEADERS,
  ],
  requestBody: {
    required: true,
    content: {
      "application/json": { schema: { type: "object" }, example: EXAMPLES.hook },
      "application/x-www-form-urlencoded": { schema: { type: "object" } },
    },
  },
  responses: {
    "200": {
      description:
        "The conditions did not hold (`{ skipped: true, reason }`), or the trigger's own `respond` body",
      content: { "application/json": { schema: { type: "object" }, example: EXAMPLES.skipped } },
    },
    "202": {
      description: "The run's job was created and the request sent; read it at `Location`",
      headers: jobLocation,
      content: { "application/json": { schema: ref("Accepted"), example: EXAMPLES.accepted } },
    },
    ...problemResponses([
      "unknown-trigger",
      "invalid-body",
      ...AUTHENTICATION,
      "missing-delivery-id",
      "unsupported-payload",
      "invalid-input",
      "idempotency-conflict",
      "forbidden",
      "unknown-cluster",
      "unknown-collective",
      "lock-timeout",
      "upstream-unavailable",
      "timeout",
      "data-store-unavailable",
      "method-not-allowed",
      ...EVERY_REQUEST,
    ]),
  },
};

/** One of the /v1/jobs operations: signed like /v1/rpc, about one job. */
function jobOperation(
  operationId: string,
  summary: string,
  responses: Json,
  problems: ProblemKind[] = [],
  parameters: Json[] = [],
) {
  return {
    operationId,
    summary,
    security,
    parameters: [jobId, ...parameters],
    responses: {
      ...responses,
      ...problemResponses([
        ...AUTHENTICATION,
        ...problems,
        "forbidden",
        "not-found",
        "upstream-unavailable",
        ...EVERY_REQUEST,
      ]),
    },
  };
}

const query = (name: string, description: string, schema: Json = { type: "string" }) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});

const listJobs = {
  operationId: "listJobs",
  summary: "The jobs the caller may read, newest first (`Link: rel=next` while there are more)",
  security,
  parameters: [
    query("state", `Comma-separated: ${JOB_STATES.join(", ")}`),
    query("trigger", "Only jobs started by this webhook trigger"),
    query("since", "Only jobs created at or after an RFC 3339 time, or this long ago (`30m`, `2h`, `7d`)"),
    query("limit", `Jobs per page (default ${LIST_PAGE})`, {
      type: "integer",
      minimum: 1,
      maximum: MAX_LIST_PAGE,
    }),
    query("cursor", "`next_cursor` of the page before"),
  ],
  responses: {
    "200": {
      description: "`{ jobs, next_cursor }`: each job as `GET /v1/jobs/{id}` shows it",
      headers: {
        Link: { description: '`<…?cursor=…>; rel="next"` while there is more', schema: { type: "string" } },
      },
      content: {
        "application/json": {
          schema: {
            type: "object",
            required: ["jobs", "next_cursor"],
            properties: {
              jobs: { type: "array", items: ref("Job") },
              next_cursor: { type: ["string", "null"] },
            },
          },
          example: EXAMPLES.jobList,
        },
      },
    },
    ...problemResponses([...AUTHENTICATION, "invalid-query", "upstream-unavailable", ...EVERY_REQUEST]),
  },
};

const jobPaths = {
  "/v1/jobs": { get: listJobs },
  "/v1/jobs/{id}": {
    get: jobOperation(
      "job",
      "An async job: summary and a page of per-node results (`status`, `limit`, `cursor` query parameters; `Link: rel=next`)",
      {
        "200": {
          description: "`{ job, results, next_cursor }`",
          headers: {
            Link: {
              description: '`<…?cursor=…>; rel="next"` while there is more',
              schema: { type: "string" },
            },
          },
          content: { "application/json": { schema: ref("JobPage"), example: EXAMPLES.jobPage } },
        },
      },
      ["invalid-query"],
      PAGE_QUERY,
    ),
    delete: jobOperation("cancelJob", "Cancel: stop waiting and mark the nodes still out as no_reply", {
      "200": {
        description: "`{ job }`",
        content: {
          "application/json": {
            schema: { type: "object", required: ["job"], properties: { job: ref("Job") } },
            example: EXAMPLES.job,
          },
        },
      },
    }),
  },
  "/v1/jobs/{id}/events": {
    get: jobOperation(
      "jobEvents",
      "Server-sent events: each result as it is stored, then `end`; resumable with Last-Event-ID",
      {
        "200": {
          description:
            "An event stream: `result` events (data: a JobResult, id: its `seq`), then one `end` event (data: the Job, id: `end`)",
          content: { "text/event-stream": { schema: { type: "string" }, example: EXAMPLES.events } },
        },
        "204": { description: "The job has ended and the stream was read to its end before" },
      },
      [],
      [
        header(
          "Last-Event-ID",
          "The last event id received: the stream resumes after that result; `end` once the job has ended answers 204",
        ),
      ],
    ),
  },
};

const unsignedPaths = {
  "/v1/openapi.json": {
    get: {
      operationId: "openapi",
      summary: "This document",
      security: [],
      responses: {
        "200": {
          description: "OpenAPI 3.1",
          content: { "application/json": { schema: { type: "object" }, example: { openapi: "3.1.0" } } },
        },
        ...problemResponses(["method-not-allowed"]),
      },
    },
  },
  "/healthz": {
    get: {
      operationId: "health",
      summary: "Liveness, and the state of the NATS connection (never makes one)",
      security: [],
      responses: {
        "200": {
          description: "The gateway is up",
          content: {
            "application/json": {
              schema: {
                type: "object",
                properties: {
                  status: { const: "ok" },
                  nats: { enum: ["connected", "reconnecting", "not-connected"] },
                },
              },
              example: EXAMPLES.health,
            },
          },
        },
        ...problemResponses(["method-not-allowed"]),
      },
    },
  },
};

const securitySchemes = {
  httpSignature: {
    type: "apiKey",
    in: "header",
    name: "Signature",
    description:
      "RFC 9421 HTTP Message Signatures (`Signature` and `Signature-Input`) covering an RFC 9530 `Content-Digest` of the raw body; ed25519, ecdsa-p256-sha256 or hmac-sha256 per key",
  },
  bearer: {
    type: "http",
    scheme: "bearer",
    description: "A static token per key: simpler and weaker (no body integrity, no replay protection)",
  },
};

/** The OpenAPI 3.1 description of the gateway. */
export function openApiDocument(version: string): Json {
  return {
    openapi: "3.1.0",
    info: {
      title: "choria-edge gateway",
      version,
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
      description:
        "Signed HTTPS to federated Choria RPC. Every error is an RFC 9457 problem document whose `type` is one of `x-problem-types`.",
    },
    servers: [{ url: "/", description: "The gateway that serves this document" }],
    "x-problem-types": Object.fromEntries(
      Object.entries(PROBLEMS).map(([kind, p]) => [problemType(kind as ProblemKind), p]),
    ),
    paths: {
      "/v1/rpc": { post: rpcOperation },
      "/v1/hooks/{name}": { post: hookOperation },
      ...jobPaths,
      ...unsignedPaths,
    },
    components: {
      schemas: {
        RpcRequest: jsonSchema(rpcRequestBodySchema, "input"),
        RpcResponse: jsonSchema(rpcResponseSchema, "output"),
        StreamEvent: jsonSchema(streamEventSchema, "output"),
        Problem: jsonSchema(problemSchema, "output"),
        Accepted: {
          type: "object",
          properties: { job_id: { type: "string" }, status_url: { type: "string" } },
          required: ["job_id", "status_url"],
        },
        ...JOB_SCHEMAS,
      },
      securitySchemes,
    },
  };
}
