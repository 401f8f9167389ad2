// The /v1/rpc request body as one zod schema. The gateway validates requests with it and describes it in
// its OpenAPI document; a trigger file's `request` is this body with placeholders, checked against it too.
import * as z from "zod/mini";
import {
  FACT_OPERATORS,
  IDENTITY_MAX_LENGTH,
  IDENTITY_MAX_TOKENS,
  NAME_MAX_LENGTH,
  parseFactFilterString,
} from "../protocol/mod.ts";
import { callbackTargetSchema } from "../results/jobs/mod.ts";
import { parseLimit } from "../results/mod.ts";

// Names that become NATS subject tokens: no dots, wildcards, spaces or control characters.
const NAME = /^[A-Za-z0-9_-]+$/;
// An identity is a dotted name (node1.example.net); each part must be a safe subject token.
const IDENTITY = /^[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+(?:\.[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+)*$/;

const MAX_NODES = 10_000;
const MAX_FILTER_TERMS = 100;
const MAX_TIMEOUT_SECONDS = 3600;

const name = (what: string) =>
  z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(NAME_MAX_LENGTH),
      z.regex(NAME, `${what} must be letters, digits, '_' or '-'`),
    );

// With a collective of at most NAME_MAX_LENGTH characters, the node subject stays within the subject
// limits (lib/protocol/subjects.ts) that brokers and nodes hold subjects to: one over-long identity must
// not get its whole packet of targets refused further on.
const identity = z.string().check(
  z.minLength(1),
  z.maxLength(IDENTITY_MAX_LENGTH),
  z.regex(IDENTITY, "an identity is dot-separated printable ASCII without '*' or '>'"),
  z.refine(
    (text) => text.split(".").length <= IDENTITY_MAX_TOKENS,
    `an identity has at most ${IDENTITY_MAX_TOKENS} dot-separated parts`,
  ),
);

const seconds = (description: string) =>
  z.number().check(z.positive(), z.lte(MAX_TIMEOUT_SECONDS), z.describe(description));

const factTerm = z.union([
  z.pipe(
    z.string().check(z.minLength(1), z.describe("command-line form: `country=nl`, `memory>=4`, `os=/deb/`")),
    z.transform((text, ctx) => {
      const parsed = parseFactFilterString(text);
      if (parsed) return parsed;
      ctx.issues.push({ code: "custom", message: `not a fact filter: ${JSON.stringify(text)}`, input: text });
      return z.NEVER;
    }),
  ),
  z.strictObject({
    fact: z.string().check(z.minLength(1)),
    operator: z.enum(FACT_OPERATORS),
    value: z.string().check(z.minLength(1)),
  }),
]);

const filterBodySchema = z
  .strictObject({
    identity: z
      .optional(z.array(z.string().check(z.minLength(1))).check(z.maxLength(MAX_FILTER_TERMS)))
      .check(z.describe("any of these identities, or `/regex/`")),
    class: z
      .optional(z.array(z.string().check(z.minLength(1))).check(z.maxLength(MAX_FILTER_TERMS)))
      .check(z.describe("every one of these classes (`cf_class` on the wire)")),
    fact: z
      .optional(z.array(factTerm).check(z.maxLength(MAX_FILTER_TERMS)))
      .check(z.describe("every one of these fact filters")),
    agent: z
      .optional(z.array(z.string().check(z.minLength(1))).check(z.maxLength(MAX_FILTER_TERMS)))
      .check(z.describe("every one of these agents")),
    compound: z
      .optional(z.string().check(z.minLength(1), z.maxLength(4096)))
      .check(z.describe("a Choria compound filter expression")),
  })
  .check(z.describe("Choria's discovery filter; the RPC carries it too, so every node checks it again"));

export const rpcRequestBodySchema = z
  .strictObject({
    agent: name("agent"),
    action: name("action"),
    data: z._default(z.record(z.string(), z.unknown()), {}).check(z.describe("the action's inputs")),
    cluster: name("cluster").check(z.describe("the federation broker cluster that reaches the collective")),
    collective: z.optional(name("collective")).check(z.describe("default: the cluster's first collective")),
    filter: z.optional(filterBodySchema),
    nodes: z
      .optional(z.array(identity).check(z.minLength(1), z.maxLength(MAX_NODES)))
      .check(z.describe("address these nodes directly instead of discovering them")),
    limit: z
      .optional(z.union([z.number().check(z.int(), z.gte(1)), z.string().check(z.regex(/^\d{1,9}%?$/))]))
      .check(z.describe("send to at most N targets, or N% of them (`choria req --limit`)")),
    limit_method: z._default(z.enum(["first", "random"]), "first"),
    timeout: z._default(seconds("seconds to wait for replies once the request is out"), 10),
    discovery_timeout: z._default(
      seconds("longest discovery, in seconds; it ends early once replies stall"),
      2,
    ),
    idle_timeout: z.optional(seconds("end the collection when replies stall this long after the first one")),
    expect: z
      .optional(z.number().check(z.int(), z.gte(0), z.lte(1_000_000)))
      .check(z.describe("replies that make the request complete; default: the number of targets")),
    mode: z
      ._default(z.enum(["sync", "broadcast", "async"]), "sync")
      .check(
        z.describe(
          "`sync` discovers (or takes `nodes`) and reports silent nodes; `broadcast` skips discovery; `async` is `sync` answered at once with a job (202)",
        ),
      ),
    callback: z
      .optional(callbackTargetSchema)
      .check(z.describe("async only: where the collector delivers the job's summary once it has ended")),
  })
  .check(
    z.superRefine((body, ctx) => {
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
    }),
  );

export type RpcRequestBody = z.output<typeof rpcRequestBodySchema>;

// The keys of the bodies most calls send, which commonRpcBody checks without zod; any other key (a
// filter, limit or callback) sends the body through the schema.
const COMMON_KEYS = new Set([
  "agent",
  "action",
  "data",
  "cluster",
  "collective",
  "nodes",
  "limit_method",
  "timeout",
  "discovery_timeout",
  "idle_timeout",
  "expect",
  "mode",
]);
const MODES: readonly unknown[] = ["sync", "broadcast", "async"];
const LIMIT_METHODS: readonly unknown[] = ["first", "random"];

/**
 * The schema's output for a body of the common keys that it would accept, without running zod (its parse
 * cost the gateway more than the rest of reading the body); undefined for anything else, which the schema
 * then checks and explains. It never accepts what the schema refuses: a property test holds it to that.
 */
export function commonRpcBody(json: unknown): RpcRequestBody | undefined {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined;
  const body = json as Record<string, unknown>;
  for (const key in body) if (!COMMON_KEYS.has(key)) return undefined;
  const { agent, action, cluster, collective, data = {}, nodes, mode = "sync" } = body;
  const { limit_method = "first", timeout = 10, discovery_timeout = 2, idle_timeout, expect } = body;
  if (!isName(agent) || !isName(action) || !isName(cluster)) return undefined;
  if (collective !== undefined && !isName(collective)) return undefined;
  // zod's record copies keys by assignment, so an own `__proto__` would come out differently.
  if (data === null || typeof data !== "object" || Array.isArray(data) || Object.hasOwn(data, "__proto__"))
    return undefined;
  if (nodes !== undefined && !isNodeList(nodes)) return undefined;
  if (!MODES.includes(mode) || (mode === "broadcast" && nodes !== undefined)) return undefined;
  if (!LIMIT_METHODS.includes(limit_method)) return undefined;
  if (!isSeconds(timeout) || !isSeconds(discovery_timeout)) return undefined;
  if (idle_timeout !== undefined && !isSeconds(idle_timeout)) return undefined;
  if (expect !== undefined && !isCount(expect)) return undefined;
  return {
    agent,
    action,
    data: { ...data },
    cluster,
    ...(collective === undefined ? {} : { collective }),
    ...(nodes === undefined ? {} : { nodes: nodes.slice() }),
    limit_method,
    timeout,
    discovery_timeout,
    ...(idle_timeout === undefined ? {} : { idle_timeout }),
    ...(expect === undefined ? {} : { expect }),
    mode,
  } as RpcRequestBody;
}

function isName(value: unknown): value is string {
  return (
    typeof value === "string" && value.length >= 1 && value.length <= NAME_MAX_LENGTH && NAME.test(value)
  );
}

function isNodeList(value: unknown): value is string[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_NODES) return false;
  return value.every(
    (node) =>
      typeof node === "string" &&
      node.length >= 1 &&
      node.length <= IDENTITY_MAX_LENGTH &&
      IDENTITY.test(node) &&
      node.split(".").length <= IDENTITY_MAX_TOKENS,
  );
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value <= 1_000_000;
}

function isSeconds(value: unknown): value is number {
  return typeof value === "number" && value > 0 && value <= MAX_TIMEOUT_SECONDS;
}
