// The edge gateway as one Hono app for every runtime: signed HTTPS in, federated Choria RPC out. This file
// wires the routes; middleware.ts authenticates and answers errors, run.ts runs requests, hooks.ts takes
// webhook deliveries and jobs.ts serves /v1/jobs.
import { type Context, Hono } from "hono";
import type { JobStore } from "../results/jobs/mod.ts";
import { mayReadJob } from "../security/http/mod.ts";
import { authChallenge } from "./auth.ts";
import type { GatewayDeps } from "./deps.ts";
import { hookHandler } from "./hooks.ts";
import { idempotencyKeyOf, prefersAsync, sha256Hex } from "./http.ts";
import { parseIntent } from "./intent.ts";
import { defaultCallbacks, openJobStore } from "./job-run.ts";
import type { JobStoreSource } from "./job-store.ts";
import { creatorOnly, jobRoutes } from "./jobs.ts";
import { measured } from "./metrics.ts";
import {
  type AuditVariables,
  type Authentication,
  audited,
  jsonOnly,
  problemHandler,
  type Signed,
  signed,
} from "./middleware.ts";
import { openApiDocument } from "./openapi.ts";
import { problem, problemResponse } from "./problems.ts";
import { RunService } from "./run.ts";
import { callbackSealer } from "./seal.ts";

export const GATEWAY_VERSION = "0.1.0";

// The reference loads only what this gateway serves, and nothing may frame it.
const DOCS_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "public, max-age=300",
};

// Built on first ask and shared by every gateway of the process (a keys reload builds a new one): zod's
// toJSONSchema over every schema costs ~10 ms of CPU, which a cold Worker isolate or Lambda would otherwise
// pay on its first request, whatever that request was.
let openapiText: string | undefined;
const openapiJson = () => (openapiText ??= JSON.stringify(openApiDocument(GATEWAY_VERSION)));

/** Before a route's middleware has run, the audit context may not be there yet. */
type GatewayEnv = { Variables: Partial<AuditVariables> };

export type GatewayApp = Hono<GatewayEnv>;

export function createGateway(deps: GatewayDeps): GatewayApp {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const keyCallbacks = defaultCallbacks(deps.auth.keys);
  const sealer = callbackSealer(config.callbackSealKey, [
    ...[...keyCallbacks].map(([id, callback]) => ({ where: `key ${id}`, callback })),
    ...(deps.triggers?.set.all() ?? []).map((trigger) => ({
      where: `trigger ${trigger.name}`,
      callback: trigger.callback,
    })),
  ]);
  const service = new RunService({
    ...deps,
    now,
    senderid: config.identity ?? deps.signer.certname,
    sealer,
  });
  const authentication: Authentication = { config, auth: deps.auth, now };
  const app = new Hono<GatewayEnv>();
  if (deps.metrics !== undefined) app.use(measured(deps.metrics, now));
  const challenge = authChallenge(deps.auth.keys);

  // Every 401, whichever step refused, says how to authenticate (RFC 9110 §15.5.2 requires it).
  app.use(async (c, next) => {
    await next();
    if (c.res.status === 401 && !c.res.headers.has("www-authenticate"))
      c.res.headers.set("www-authenticate", challenge);
  });

  app.get("/healthz", (c) => c.json({ status: "ok", nats: deps.nats.status() }));
  app.get("/v1/openapi.json", (c) => c.body(openapiJson(), 200, { "content-type": "application/json" }));
  if (deps.docs === undefined)
    app.get("/docs", () =>
      problemResponse(
        problem(
          "not-found",
          "this runtime serves no interactive reference: the OpenAPI document is at /v1/openapi.json, and a Node gateway serves it rendered at /docs",
        ),
      ),
    );
  for (const [path, asset] of Object.entries(deps.docs ?? {}))
    app.get(path, (c) => c.body(asset.body, 200, { "content-type": asset.type, ...DOCS_HEADERS }));

  app.post("/v1/rpc", audited(now), jsonOnly, signed(authentication, config.maxBodyBytes), async (c) => {
    const { key, nonce } = c.var.caller;
    Object.assign(c.var.audit, { callerid: key.callerId, ...(nonce === undefined ? {} : { nonce }) });
    const intent = parseIntent(c.var.body, config);
    const respondAsync =
      intent.mode === "async" || (intent.mode === "sync" && prefersAsync(c.req.header("prefer") ?? null));
    const idempotency = idempotencyKeyOf(c.req.raw.headers);
    return await service.execute(c, {
      authStarted: c.var.authStarted,
      caller: { keyId: key.id, callerId: key.callerId, policy: key.policy },
      intent,
      respondAsync,
      preferAsync: respondAsync && intent.mode === "sync",
      defaultCallback: keyCallbacks.get(key.id),
      ...(idempotency === undefined
        ? {}
        : { idempotency: { idempotencyKey: idempotency, fingerprint: await sha256Hex(c.var.body) } }),
    });
  });

  if (deps.jobs !== undefined) {
    const jobs = jobsHandler(deps, deps.jobs);
    app.get("/v1/jobs", audited(now), signed(authentication, config.maxBodyBytes), jobs);
    for (const path of ["/v1/jobs/:id", "/v1/jobs/:id/events"])
      app.on(["GET", "DELETE"], path, audited(now), signed(authentication, config.maxBodyBytes), jobs);
  }

  if (deps.triggers !== undefined)
    app.post(
      "/v1/hooks/:name",
      audited(now),
      hookHandler({ ...deps, jobs: deps.jobs, triggers: deps.triggers, now, service }),
    );

  for (const [path, allow] of [
    ["/v1/rpc", "POST"],
    ["/v1/hooks/:name", "POST"],
    ["/v1/openapi.json", "GET, HEAD"],
    ["/healthz", "GET, HEAD"],
  ] as const) {
    app.all(path, (c) =>
      problemResponse(problem("method-not-allowed", `${c.req.method} is not allowed on ${path}`), { allow }),
    );
  }
  app.notFound((c) => problemResponse(problem("not-found", `no route for ${c.req.method} ${c.req.path}`)));
  app.onError(problemHandler(deps.audit, deps.log));
  return app;
}

interface JobsEnv {
  keyId: string;
}

/**
 * /v1/jobs behind the gateway's authentication: the jobs sub-app, rebuilt when the store it reads is
 * another (a reconnect), answers; the audit line says how.
 */
function jobsHandler(deps: GatewayDeps, jobs: JobStoreSource) {
  let routes: { store: JobStore; app: Hono } | undefined;
  const routesFor = (store: JobStore) =>
    jobRoutes({
      store,
      ...(deps.log === undefined ? {} : { log: deps.log }),
      now: deps.now ?? Date.now,
      callerKeyId: (jc) => (jc.env as JobsEnv).keyId,
      authorize: (keyId, job) => {
        if (creatorOnly(keyId, job)) return true;
        const policy = deps.auth.keys.get(keyId)?.policy;
        // Records written before jobs kept their cluster cannot be checked: they stay their creator's.
        return (
          policy !== undefined && job.cluster !== null && mayReadJob(policy, { ...job, cluster: job.cluster })
        );
      },
    });
  return async (c: Context<Signed>): Promise<Response> => {
    const store = await openJobStore(jobs);
    if (routes?.store !== store) routes = { store, app: routesFor(store) };
    const env: JobsEnv = { keyId: c.var.caller.key.id };
    const response = await routes.app.fetch(c.req.raw, env);
    deps.audit?.({ ...c.var.audit, decision: response.ok ? "accepted" : "refused", status: response.status });
    return response;
  };
}
