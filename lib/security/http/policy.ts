// What a key may ask for. Deny by default: an empty list allows nothing, and every limit a policy names
// is checked; a request passes only when every rule lets it through.
import * as z from "zod/mini";
// For zod/mini's English messages (lib/protocol/zod-messages.ts).
import "../../protocol/mod.ts";
import type { Filter } from "../../protocol/mod.ts";

const FILTER_KINDS = ["identity", "fact", "class", "agent", "compound"] as const;
type FilterKind = (typeof FILTER_KINDS)[number];

const pattern = z.string().check(z.minLength(1), z.maxLength(256));
const actionPattern = pattern.check(
  z.regex(/^[^#]+#[^#]+$/, 'an action pattern is "agent#action", e.g. "rpcutil#*"'),
);
const callbackUrlPrefix = z.string().check(
  z.minLength(1),
  z.maxLength(2048),
  z.refine((text) => urlPrefix(text) !== undefined, {
    message: "a callback URL prefix is an http(s) URL without user name, password, query or fragment",
  }),
);

export const policySchema = z
  .strictObject({
    clusters: z._default(z.array(pattern), []).check(z.describe("federation clusters, globs")),
    collectives: z._default(z.array(pattern), []).check(z.describe("member collectives, globs")),
    agents: z._default(z.array(pattern), []).check(z.describe("agents, globs")),
    actions: z
      ._default(z.array(actionPattern), [])
      .check(z.describe('"agent#action" globs, e.g. "rpcutil#*"')),
    requireFilter: z
      .optional(z.union([z.boolean(), z.array(z.enum(FILTER_KINDS)).check(z.minLength(1))]))
      .check(
        z.describe(
          "true: an identity, fact, class or compound filter; a list: a filter of one of these kinds",
        ),
      ),
    maxNodes: z.optional(z.number().check(z.int(), z.positive())),
    maxTimeoutSeconds: z.optional(z.number().check(z.positive())),
    allowBroadcast: z
      .optional(z.boolean())
      .check(z.describe("broadcast mode, where the number of nodes is unknown")),
    callbackUrls: z
      .optional(z.array(callbackUrlPrefix))
      .check(
        z.describe(
          "URL prefixes a request may name as its callback (same scheme, host and port; the path under the prefix's); none by default",
        ),
      ),
    callbackLambdas: z
      .optional(z.array(pattern))
      .check(
        z.describe(
          "Lambda function names or ARNs, globs, a request may name as its callback; none by default",
        ),
      ),
    readJobs: z
      .optional(z.enum(["own", "allowed"]))
      .check(
        z.describe(
          "own (default): only the async jobs this key created; allowed: also other keys' jobs in clusters, collectives, agents and actions this policy allows",
        ),
      ),
  })
  .check(
    z.refine((policy) => !(policy.allowBroadcast && policy.maxNodes !== undefined), {
      message: "maxNodes cannot be enforced in broadcast mode: drop one of allowBroadcast and maxNodes",
    }),
  );

export interface Policy {
  clusters: string[];
  collectives: string[];
  agents: string[];
  /** "agent#action" globs, e.g. "rpcutil#*", "demo#echo". */
  actions: string[];
  /** `true`: any identity, fact, class or compound filter (an agent filter narrows little); a list: any of these. */
  requireFilter?: boolean | FilterKind[];
  maxNodes?: number;
  maxTimeoutSeconds?: number;
  /** Broadcast mode skips discovery, so the node count is unknown; refused unless this is true. */
  allowBroadcast?: boolean;
  /** Whose async jobs the key may read and cancel: its own (the default), or any this policy would allow. */
  readJobs?: "own" | "allowed";
  /**
   * URL prefixes a request may name as its completion callback: the same scheme, host and port, and a path
   * at or under the prefix's (on a segment boundary). None by default. A key's own `callback` in the keys
   * file, and a trigger's, are the operator's and need no entry here.
   */
  callbackUrls?: string[];
  /** Lambda functions (names or ARNs as the request writes them, globs) a request may name as its callback. */
  callbackLambdas?: string[];
}

/** What a job record says about the request that made it. */
export interface JobScope {
  cluster: string;
  collective: string;
  agent: string;
  action: string;
}

/**
 * Whether a key may read (or cancel) a job another key made: only with `readJobs: allowed`, and only
 * where the policy would let it send that request (limits on nodes, timeouts and filters aside).
 */
export function mayReadJob(policy: Policy, job: JobScope): boolean {
  if (policy.readJobs !== "allowed") return false;
  return (
    matchesAnyGlob(policy.clusters, job.cluster) &&
    matchesAnyGlob(policy.collectives, job.collective) &&
    matchesAnyGlob(policy.agents, job.agent) &&
    matchesAnyGlob(policy.actions, `${job.agent}#${job.action}`)
  );
}

export interface PolicyIntent {
  cluster: string;
  collective: string;
  agent: string;
  action: string;
  /** The caller's filter, wire-shaped (`cf_class` for classes); missing arrays mean no constraint. */
  filter: Partial<Filter>;
  /** Target count when known; undefined before discovery, so ask again once discovery has counted them. */
  nodes?: number;
  timeoutSeconds: number;
  /** The longest discovery the request may wait for; undefined when it discovers nothing (named nodes, broadcast). */
  discoveryTimeoutSeconds?: number;
  broadcast: boolean;
  /** The completion callback the request itself names (not a key's or trigger's configured default). */
  callback?: CallbackIntent;
}

export type CallbackIntent =
  | { kind: "url"; url: string }
  | { kind: "lambda"; functionName: string; region?: string };

export type PolicyDecision = { ok: true } | { ok: false; problem: "forbidden"; detail: string };

const forbidden = (detail: string): PolicyDecision => ({ ok: false, problem: "forbidden", detail });

export function authorize(policy: Policy, intent: PolicyIntent): PolicyDecision {
  if (!matchesAnyGlob(policy.clusters, intent.cluster))
    return forbidden(`cluster ${intent.cluster} is not in the key's clusters`);
  if (!matchesAnyGlob(policy.collectives, intent.collective))
    return forbidden(`collective ${intent.collective} is not in the key's collectives`);
  if (!matchesAnyGlob(policy.agents, intent.agent))
    return forbidden(`agent ${intent.agent} is not in the key's agents`);
  const action = `${intent.agent}#${intent.action}`;
  if (!matchesAnyGlob(policy.actions, action))
    return forbidden(`action ${action} is not in the key's actions`);
  if (intent.broadcast && policy.allowBroadcast !== true)
    return forbidden("broadcast mode is not allowed for this key (allowBroadcast)");
  if (intent.broadcast && policy.maxNodes !== undefined)
    return forbidden("broadcast mode cannot respect the key's maxNodes");
  if (policy.maxNodes !== undefined && intent.nodes !== undefined && intent.nodes > policy.maxNodes)
    return forbidden(`${intent.nodes} nodes is over the key's maxNodes of ${policy.maxNodes}`);
  if (policy.maxTimeoutSeconds !== undefined && intent.timeoutSeconds > policy.maxTimeoutSeconds)
    return forbidden(
      `a timeout of ${intent.timeoutSeconds}s is over the key's maxTimeoutSeconds of ${policy.maxTimeoutSeconds}`,
    );
  // Discovery holds the request (and the fleet's attention) as long as the collection does: same cap.
  if (
    policy.maxTimeoutSeconds !== undefined &&
    intent.discoveryTimeoutSeconds !== undefined &&
    intent.discoveryTimeoutSeconds > policy.maxTimeoutSeconds
  )
    return forbidden(
      `a discovery_timeout of ${intent.discoveryTimeoutSeconds}s is over the key's maxTimeoutSeconds of ${policy.maxTimeoutSeconds}`,
    );
  const required = requiredFilterKinds(policy.requireFilter);
  if (required.length > 0 && !required.some((kind) => filterHas(intent.filter, kind)))
    return forbidden(`the key requires a filter: one of ${required.join(", ")} (requireFilter)`);
  if (intent.callback !== undefined) return authorizeCallback(policy, intent.callback);
  return { ok: true };
}

/**
 * Whether a request may name this callback. Deny by default: callbacks let a caller make the collector
 * send requests, so only targets the operator listed are allowed. URLs are compared parsed, never as
 * text, so that `https://hooks.example.com` does not let `https://hooks.example.com.evil.net` through.
 */
function authorizeCallback(policy: Policy, callback: CallbackIntent): PolicyDecision {
  if (callback.kind === "url") {
    const target = parsedUrl(callback.url);
    if (target === undefined || target.username !== "" || target.password !== "")
      return forbidden("a callback URL may not carry a user name or password");
    const allowed = (policy.callbackUrls ?? []).some((entry) => {
      const prefix = urlPrefix(entry);
      return prefix !== undefined && underPrefix(target, prefix);
    });
    return allowed
      ? { ok: true }
      : forbidden(`callback URL ${target.origin} (path ${target.pathname}) is not in the key's callbackUrls`);
  }
  const name = callback.functionName;
  // A name means a function in the collector's region; naming another region makes it another function,
  // so that is allowed only when the name is a full ARN in that region.
  if (callback.region !== undefined && !name.startsWith(`arn:aws:lambda:${callback.region}:`))
    return forbidden(
      `a callback in region ${callback.region} must name its function by a full ARN in that region`,
    );
  return matchesAnyGlob(policy.callbackLambdas ?? [], name)
    ? { ok: true }
    : forbidden(`callback function ${name} is not in the key's callbackLambdas`);
}

function parsedUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** A policy's URL prefix, parsed; undefined when it is not one (see callbackUrlPrefix). */
function urlPrefix(text: string): URL | undefined {
  const url = parsedUrl(text);
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) return undefined;
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") return undefined;
  // `https://x/?` and `https://x/#` parse with an empty query or fragment; they are not prefixes either.
  if (text.includes("?") || text.includes("#")) return undefined;
  return url;
}

/** Same scheme, host and port (as the URL parser normalises them); the path equal, or below on a `/`. */
function underPrefix(target: URL, prefix: URL): boolean {
  if (target.protocol !== prefix.protocol || target.host !== prefix.host) return false;
  const path = prefix.pathname;
  if (target.pathname === path) return true;
  return target.pathname.startsWith(path.endsWith("/") ? path : `${path}/`);
}

function requiredFilterKinds(requirement: Policy["requireFilter"]): readonly FilterKind[] {
  if (requirement === true) return ["identity", "fact", "class", "compound"];
  if (requirement === false || requirement === undefined) return [];
  return requirement;
}

function filterHas(filter: Partial<Filter>, kind: FilterKind): boolean {
  const terms = kind === "class" ? filter.cf_class : filter[kind];
  return (terms?.length ?? 0) > 0;
}

function matchesAnyGlob(patterns: readonly string[], value: string): boolean {
  return patterns.some((glob) => globMatch(glob, value));
}

/**
 * Shell-style matching with `*` (any run of characters, also none) and `?` (exactly one character); every
 * other character stands for itself. Backtracks only to the last `*`, so it runs in O(pattern × value).
 */
export function globMatch(glob: string, value: string): boolean {
  let g = 0;
  let v = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (v < value.length) {
    const char = glob[g];
    if (char === "*") {
      starAt = g++;
      resumeAt = v;
    } else if (char !== undefined && (char === "?" || char === value[v])) {
      g++;
      v++;
    } else if (starAt !== -1) {
      g = starAt + 1;
      v = ++resumeAt;
    } else {
      return false;
    }
  }
  while (glob[g] === "*") g++;
  return g === glob.length;
}
