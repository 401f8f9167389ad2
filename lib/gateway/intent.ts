// From a request body to what the gateway runs: the validated intent, the policy question it asks, and
// the RPC plan that lib/results carries out.
import { depthDetail, jsonDepthExceeds } from "../protocol/mod.ts";
import type { CallbackTarget } from "../results/jobs/mod.ts";
import { type RpcPlan, uniqueTargets } from "../results/mod.ts";
import { authorize, type CallbackIntent, type Policy, type PolicyIntent } from "../security/http/mod.ts";
import type { Collectives, GatewayConfig } from "./config.ts";
import { type FieldError, fieldError, invalidBody, problem } from "./problems.ts";
import { Refusal, refuse } from "./refusal.ts";
import { parseRpcBody, type RpcIntent } from "./schema.ts";

/** A /v1/rpc body as the gateway runs it, or the invalid-body refusal. */
export function parseIntent(body: Uint8Array, config: GatewayConfig): RpcIntent {
  // Checked on the bytes, before anything walks a parsed value: see lib/protocol/json-depth.ts.
  if (jsonDepthExceeds(body)) throw new Refusal(invalidBody([fieldError([], depthDetail())]));
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (err) {
    // Not the parser's message: it quotes the text around the error, a piece of the body.
    throw new Refusal(
      invalidBody([fieldError([], err instanceof TypeError ? "not UTF-8 text" : "not valid JSON")]),
    );
  }
  return intentOf(json, config, "invalid-body");
}

/**
 * A request body as the gateway runs it. A trigger's rendered request is checked the same way, its
 * errors reported as `invalid-input`: the delivery's values made it so.
 */
export function intentOf(
  json: unknown,
  config: GatewayConfig,
  kind: "invalid-body" | "invalid-input",
): RpcIntent {
  const invalid = (errors: FieldError[]) => {
    const doc = invalidBody(errors);
    return new Refusal(kind === "invalid-body" ? doc : { ...doc, ...problem(kind, doc.detail) });
  };
  const parsed = parseRpcBody(json);
  if (!parsed.ok) throw invalid(parsed.errors);
  const intent = parsed.intent;
  const max = config.maxTimeoutMs;
  for (const [field, ms] of [
    ["timeout", intent.timeoutMs],
    ["discovery_timeout", intent.discoveryTimeoutMs],
  ] as const) {
    if (ms > max) throw invalid([fieldError([field], `at most ${max / 1000} seconds here`)]);
  }
  return intent;
}

/** The collectives a request's cluster reaches, or the unknown-cluster refusal. */
export function collectivesOf(intent: RpcIntent, config: GatewayConfig): Collectives {
  const collectives = config.clusters[intent.cluster];
  if (collectives === undefined)
    throw refuse(
      "unknown-cluster",
      `this gateway does not publish into cluster ${intent.cluster}; it knows ${Object.keys(config.clusters).sort().join(", ") || "no cluster"}`,
    );
  return collectives;
}

/** What the caller's policy is asked before anything is sent. */
export function policyIntentOf(intent: RpcIntent, collective: string): PolicyIntent {
  return {
    cluster: intent.cluster,
    collective,
    agent: intent.agent,
    action: intent.action,
    filter: intent.filter,
    ...(intent.nodes === undefined ? {} : { nodes: uniqueTargets(intent.nodes).length }),
    timeoutSeconds: intent.timeoutMs / 1000,
    ...(intent.nodes === undefined && intent.mode !== "broadcast"
      ? { discoveryTimeoutSeconds: intent.discoveryTimeoutMs / 1000 }
      : {}),
    broadcast: intent.mode === "broadcast",
    // Only a callback the request names is the caller's choice; a key's or trigger's own is config.
    ...(intent.callback === undefined ? {} : { callback: callbackIntent(intent.callback) }),
  };
}

export function authorizeOrRefuse(policy: Policy, intent: PolicyIntent): void {
  const decision = authorize(policy, intent);
  if (!decision.ok) throw refuse("forbidden", decision.detail);
}

function callbackIntent(callback: CallbackTarget): CallbackIntent {
  return callback.kind === "url"
    ? { kind: "url", url: callback.url }
    : {
        kind: "lambda",
        functionName: callback.function_name,
        ...(callback.region === undefined ? {} : { region: callback.region }),
      };
}

export function planOf(intent: RpcIntent, collective: string, config: GatewayConfig): RpcPlan {
  return {
    cluster: intent.cluster,
    collective,
    agent: intent.agent,
    action: intent.action,
    data: intent.data,
    filter: intent.filter,
    addressing: intent.nodes
      ? { kind: "nodes", nodes: intent.nodes }
      : intent.mode === "broadcast"
        ? { kind: "broadcast" }
        : { kind: "discover", timeoutMs: intent.discoveryTimeoutMs, idleMs: config.discoveryIdleMs },
    ...(intent.limit ? { limit: intent.limit } : {}),
    limitMethod: intent.limitMethod,
    ...(intent.expect === undefined ? {} : { expect: intent.expect }),
    timeoutMs: intent.timeoutMs,
    ...(intent.idleMs === undefined ? {} : { idleMs: intent.idleMs }),
    ttl: config.ttlSeconds,
    dialect: config.dialects[intent.cluster] ?? "v1",
  };
}
