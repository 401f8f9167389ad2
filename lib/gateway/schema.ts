// The HTTP API's documents as zod schemas: request validation and the OpenAPI description both come
// from here, so the two cannot drift apart.
import { z } from "zod";
import {
  FACT_OPERATORS,
  type Filter,
  IDENTITY_MAX_LENGTH,
  IDENTITY_MAX_TOKENS,
  NAME_MAX_LENGTH,
  parseFactFilterString,
  validateFilter,
} from "../protocol/mod.ts";
import { type CallbackTarget, callbackTargetSchema } from "../results/jobs/mod.ts";
import { type Limit, type LimitMethod, parseLimit } from "../results/mod.ts";
import { type FieldError, fieldError } from "./problems.ts";

// Names that become NATS subject tokens: no dots, wildcards, spaces or control characters.
const NAME = /^[A-Za-z0-9_-]+$/;
// An identity is a dotted name (node1.example.net); each part must be a safe subject token.
const IDENTITY = /^[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+(?:\.[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+)*$/;

export const MAX_NODES = 10_000;
const MAX_FILTER_TERMS = 100;
const MAX_TIMEOUT_SECONDS = 3600;

const name = (what: string) =>
  z.string().min(1).max(NAME_MAX_LENGTH).regex(NAME, `${what} must be letters, digits, '_' or '-'`);

// With a collective of at most NAME_MAX_LENGTH characters, the node subject stays within the subject
// limits (lib/protocol/subjects.ts) that brokers and nodes hold subjects to: one over-long identity must
// not get its whole packet of targets refused further on.
const identity = z
  .string()
  .min(1)
  .max(IDENTITY_MAX_LENGTH)
  .regex(IDENTITY, "an identity is dot-separated printable ASCII without '*' or '>'")
  .refine(
    (text) => text.split(".").length <= IDENTITY_MAX_TOKENS,
    `an identity has at most ${IDENTITY_MAX_TOKENS} dot-separated parts`,
  );

const seconds = (description: string) => z.number().positive().max(MAX_TIMEOUT_SECONDS).describe(description);

const factTerm = z.union([
  z
    .string()
    .min(1)
    .describe("command-line form: `country=nl`, `memory>=4`, `os=/deb/`")
    .transform((text, ctx) => {
      const parsed = parseFactFilterString(text);
      if (parsed) return parsed;
      ctx.addIssue({ code: "custom", message: `not a fact filter: ${JSON.stringify(text)}` });
      return z.NEVER;
    }),
  z.strictObject({
    fact: z.string().min(1),
    operator: z.enum(FACT_OPERATORS),
    value: z.string().min(1),
  }),
]);

export const filterBodySchema = z
  .strictObject({
    identity: z
      .array(z.string().min(1))
      .max(MAX_FILTER_TERMS)
      .optional()
      .describe("any of these identities, or `/regex/`"),
    class: z
      .array(z.string().min(1))
      .max(MAX_FILTER_TERMS)
      .optional()
      .describe("every one of these classes (`cf_class` on the wire)"),
    fact: z.array(factTerm).max(MAX_FILTER_TERMS).optional().describe("every one of these fact filters"),
    agent: z.array(z.string().min(1)).max(MAX_FILTER_TERMS).optional().describe("every one of these agents"),
    compound: z.string().min(1).max(4096).optional().describe("a Choria compound filter expression"),
  })
  .describe("Choria's discovery filter; the RPC carries it too, so every node checks it again");

export const rpcRequestBodySchema = z
  .strictObject({
    agent: name("agent"),
    action: name("action"),
    data: z.record(z.string(), z.unknown()).default({}).describe("the action's inputs"),
    cluster: name("cluster").describe("the federation broker cluster that reaches the collective"),
    collective: name("collective").optional().describe("default: the cluster's first collective"),
    filter: filterBodySchema.optional(),
    nodes: z
      .array(identity)
      .min(1)
      .max(MAX_NODES)
      .optional()
      .describe("address these nodes directly instead of discovering them"),
    limit: z
      .union([z.number().int().min(1), z.string().regex(/^\d{1,9}%?$/)])
      .optional()
      .describe("send to at most N targets, or N% of them (`choria req --limit`)"),
    limit_method: z.enum(["first", "random"]).default("first"),
    timeout: seconds("seconds to wait for replies once the request is out").default(10),
    discovery_timeout: seconds("longest discovery, in seconds; it ends early once replies stall").default(2),
    idle_timeout: seconds("end the collection when replies stall this long after the first one").optional(),
    expect: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .optional()
      .describe("replies that make the request complete; default: the number of targets"),
    mode: z
      .enum(["sync", "broadcast", "async"])
      .default("sync")
      .describe(
        "`sync` discovers (or takes `nodes`) and reports silent nodes; `broadcast` skips discovery; `async` is `sync` answered at once with a job (202)",
      ),
    callback: callbackTargetSchema
      .optional()
      .describe("async only: where the collector delivers the job's summary once it has ended"),
  })
  .superRefine((body, ctx) => {
    if (body.mode === "broadcast" && body.nodes !== undefined)
      ctx.addIssue({ code: "custom", path: ["nodes"], message: "broadcast mode addresses no named nodes" });
    if (body.mode === "broadcast" && body.limit !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["limit"],
        message: "a limit needs targets: not in broadcast mode",
      });
    if (body.callback !== undefined && body.mode !== "async")
      ctx.addIssue({ code: "custom", path: ["callback"], message: "a callback needs mode async" });
    if (body.limit !== undefined && parseLimit(body.limit) === undefined)
      ctx.addIssue({ code: "custom", path: ["limit"], message: "expected N or N% (1-100%), not zero" });
  });

export type RpcRequestBody = z.output<typeof rpcRequestBodySchema>;

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
  const parsed = rpcRequestBodySchema.safeParse(json);
  if (!parsed.success) return { ok: false, errors: parsed.error.issues.map((issue) => deepestIssue(issue)) };
  const body = parsed.data;
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
    .int()
    .describe(
      "Choria status: 0 OK, 1 Aborted, 2 UnknownAction, 3 MissingData, 4 InvalidData, 5 UnknownError",
    ),
  statusmsg: z.string(),
  data: z.unknown(),
  ms: z.number().describe("milliseconds from publishing the request to this reply"),
});

export const summarySchema = z.object({
  discovered: z.number().int().nullable(),
  expected: z.number().int().nullable(),
  ok: z.number().int(),
  failed: z.number().int(),
  no_reply: z.number().int().nullable(),
  unexpected: z.number().int(),
  discovery_ms: z.number().nullable(),
  elapsed_ms: z.number(),
  done: z.enum(["expected", "timeout", "idle", "cancelled"]),
});

export const rpcResponseSchema = z.object({
  request_id: z.string(),
  summary: summarySchema,
  replies: z.array(replyEntrySchema),
  no_reply: z.array(z.string()).describe("targets that stayed silent"),
  unexpected: z.array(z.string()).describe("repliers that were not targets"),
});

export const streamEventSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("start"),
    request_id: z.string(),
    discovered: z.number().int().nullable(),
    expected: z.number().int().nullable(),
  }),
  replyEntrySchema.extend({ type: z.literal("reply") }),
  rpcResponseSchema.omit({ replies: true }).extend({ type: z.literal("summary") }),
  z.looseObject({
    type: z.literal("error"),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
  }),
]);

export const problemSchema = z.looseObject({
  type: z.string().describe("one of the stable problem type URIs"),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  errors: z
    .array(z.object({ field: z.string(), pointer: z.string(), detail: z.string() }))
    .optional()
    .describe("invalid-body only: every field that failed"),
});
