// The HTTP API's documents as zod schemas: request validation and the OpenAPI description both come
// from here (the request body from lib/api, which trigger files share), so the two cannot drift apart.
import * as z from "zod/mini";
import { commonRpcBody, rpcRequestBodySchema } from "../api/mod.ts";
import { type Filter, validateFilter } from "../protocol/mod.ts";
import type { CallbackTarget } from "../results/jobs/mod.ts";
import { type Limit, type LimitMethod, parseLimit } from "../results/mod.ts";
import { type FieldError, fieldError } from "./problems.ts";

/** A validated request in the shape the gateway works with. */
export interface RpcIntent {
  agent: string;
  action: string;
  data: Record<string, unknown>;
  cluster: string;
  /** Undefined until the cluster's default is filled in. */
  collective: string | undefined;
  filter: Filter;
  nodes: string[] | undefined;
  limit: Limit | undefined;
  limitMethod: LimitMethod;
  timeoutMs: number;
  discoveryTimeoutMs: number;
  idleMs: number | undefined;
  expect: number | undefined;
  mode: "sync" | "broadcast" | "async";
  callback: CallbackTarget | undefined;
}

export type ParsedBody = { ok: true; intent: RpcIntent } | { ok: false; errors: FieldError[] };

// validateFilter reports wire field names; callers wrote the body's.
const WIRE_TO_BODY: Record<string, string> = { cf_class: "class", compound: "compound" };

/** Validates a parsed JSON body: schema first, then what Choria nodes could not evaluate (regexes, compound). */
export function parseRpcBody(json: unknown): ParsedBody {
  let body = commonRpcBody(json);
  if (body === undefined) {
    const parsed = rpcRequestBodySchema.safeParse(json);
    if (!parsed.success)
      return { ok: false, errors: parsed.error.issues.map((issue) => deepestIssue(issue)) };
    body = parsed.data;
  }
  const filter: Filter = {
    fact: body.filter?.fact ?? [],
    cf_class: body.filter?.class ?? [],
    agent: body.filter?.agent ?? [],
    identity: body.filter?.identity ?? [],
    compound: body.filter?.compound ? [[{ expr: body.filter.compound }]] : [],
  };
  const checked = validateFilter(filter);
  if (!checked.ok) {
    const [wire = "", ...rest] = checked.error.field.split(".");
    const path =
      wire === "compound" ? ["filter", "compound"] : ["filter", WIRE_TO_BODY[wire] ?? wire, ...rest];
    return { ok: false, errors: [fieldError(path, checked.error.message)] };
  }
  return {
    ok: true,
    intent: {
      agent: body.agent,
      action: body.action,
      data: body.data,
      cluster: body.cluster,
      collective: body.collective,
      filter,
      nodes: body.nodes,
      limit: body.limit === undefined ? undefined : parseLimit(body.limit),
      limitMethod: body.limit_method,
      timeoutMs: Math.round(body.timeout * 1000),
      discoveryTimeoutMs: Math.round(body.discovery_timeout * 1000),
      idleMs: body.idle_timeout === undefined ? undefined : Math.round(body.idle_timeout * 1000),
      expect: body.expect,
      mode: body.mode,
      callback: body.callback,
    },
  };
}

/**
 * A union's issue names only the union's own path; the branch that got furthest into the value (an object
 * fact filter with a bad operator rather than "expected string") says what is actually wrong.
 */
function deepestIssue(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[] = []): FieldError {
  const path = [...prefix, ...issue.path];
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    const candidates = issue.errors.flatMap((branch) => branch.slice(0, 1));
    const deepest = candidates.reduce((a, b) => (b.path.length > a.path.length ? b : a));
    if (deepest.path.length > 0) return deepestIssue(deepest, path);
  }
  return fieldError(path, issue.message);
}

// --- responses, for the OpenAPI document -----------------------------------------------------------------

export const replyEntrySchema = z.object({
  identity: z.string(),
  statuscode: z
    .number()
    .check(
      z.int(),
      z.describe(
        "Choria status: 0 OK, 1 Aborted, 2 UnknownAction, 3 MissingData, 4 InvalidData, 5 UnknownError",
      ),
    ),
  statusmsg: z.string(),
  data: z.unknown(),
  ms: z.number().check(z.describe("milliseconds from publishing the request to this reply")),
});

export const summarySchema = z.object({
  discovered: z.nullable(z.number().check(z.int())),
  expected: z.nullable(z.number().check(z.int())),
  ok: z.number().check(z.int()),
  failed: z.number().check(z.int()),
  no_reply: z.nullable(z.number().check(z.int())),
  unexpected: z.number().check(z.int()),
  conflicts: z.number().check(z.int(), z.describe("nodes that answered twice with different replies")),
  discovery_ms: z.nullable(z.number()),
  elapsed_ms: z.number(),
  done: z.enum(["expected", "timeout", "idle", "cancelled"]),
});

export const discoverySchema = z
  .object({
    complete: z
      .boolean()
      .check(
        z.describe(
          "discovery waited its whole window (`discovery_timeout`) and replies had stopped by its end",
        ),
      ),
    found: z.number().check(z.int(), z.describe("nodes that answered discovery, before `limit`")),
    reason: z
      .enum(["timeout", "stall", "cancelled"])
      .check(
        z.describe("`timeout`: the window ran out; `stall`: replies stopped for `discovery_idle` first"),
      ),
  })
  .check(
    z.describe("how discovery ended; present only when the request ran discovery (also on the job record)"),
  );

export const rpcResponseSchema = z.object({
  request_id: z.string(),
  discovery: z.optional(discoverySchema),
  summary: summarySchema,
  replies: z.array(replyEntrySchema),
  no_reply: z.array(z.string()).check(z.describe("targets that stayed silent")),
  unexpected: z.array(z.string()).check(z.describe("repliers that were not targets")),
  conflicting: z
    .array(z.string())
    .check(
      z.describe(
        "nodes that sent a second reply different from their first (the one in `replies`): a node answering twice, or someone answering in its name",
      ),
    ),
});

export const streamEventSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("start"),
    request_id: z.string(),
    discovered: z.nullable(z.number().check(z.int())),
    expected: z.nullable(z.number().check(z.int())),
  }),
  z.extend(replyEntrySchema, { type: z.literal("reply") }),
  z.extend(z.omit(rpcResponseSchema, { replies: true }), { type: z.literal("summary") }),
  z.looseObject({
    type: z.literal("error"),
    title: z.string(),
    status: z.number().check(z.int()),
    detail: z.string(),
  }),
]);

export const problemSchema = z.looseObject({
  type: z.string().check(z.describe("one of the stable problem type URIs")),
  title: z.string(),
  status: z.number().check(z.int()),
  detail: z.string(),
  errors: z
    .optional(z.array(z.object({ field: z.string(), pointer: z.string(), detail: z.string() })))
    .check(z.describe("invalid-body only: every field that failed")),
});
