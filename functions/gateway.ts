// The edge gateway as one Hono app for every runtime: signed HTTPS in, federated Choria RPC out. Each
// runtime entry (node.ts, lambda.ts, cloudflare.ts) builds the dependencies (signer, NATS source, key
// registry) its own way and hands them to createGateway.
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ClientIdentity } from "../lib/client/request.ts";
import { type Lock, Locks } from "../lib/data/mod.ts";
import { newRequestId } from "../lib/protocol/ids.ts";
import { idempotencyKey } from "../lib/results/jobs/keys.ts";
import { endJob } from "../lib/results/jobs/lifecycle.ts";
import {
  type CallbackTarget,
  callbackTargetSchema,
  type JobDataAction,
  type JobRecord,
  type NewJob,
} from "../lib/results/jobs/model.ts";
import { jobAsRpcResult } from "../lib/results/jobs/rpc-result.ts";
import type { CreateOptions, CreateOutcome, JobStore } from "../lib/results/jobs/store.ts";
import { jobReplySubject } from "../lib/results/jobs/subjects.ts";
import { uniqueTargets } from "../lib/results/limit.ts";
import {
  PublishRefused,
  publishRpc,
  type RpcPlan,
  resolveTargets,
  sendRpc,
  type Targets,
} from "../lib/results/rpc.ts";
import {
  chooseFormat,
  encodeEvent,
  MEDIA_TYPES,
  type StreamEvent,
  summaryEvent,
} from "../lib/results/stream.ts";
import type { RpcResult } from "../lib/results/summary.ts";
import type { RequestSigner } from "../lib/security/choria.ts";
import {
  type AuditEvent,
  type AuthProblem,
  type AuthResult,
  authenticate,
  authorize,
  type HttpRequestParts,
  type KeyRegistry,
  mayReadJob,
  type Policy,
  type PolicyIntent,
  type ReplayStore,
} from "../lib/security/http/mod.ts";
import type { WebhookRefusalReason } from "../lib/security/webhooks/mod.ts";
import { verifyWebhook } from "../lib/security/webhooks/mod.ts";
import type { MessageBus } from "../lib/transport/bus.ts";
import { jobDataActions } from "../lib/triggers/effects.ts";
import { evaluateTrigger, parsePayload, type Trigger } from "../lib/triggers/mod.ts";
import type { DataStoreSource } from "./gateway/buckets.ts";
import type { GatewayConfig } from "./gateway/config.ts";
import type { JobStoreSource } from "./gateway/job-store.ts";
import type { NatsLease, NatsSource } from "./gateway/nats.ts";
import { UpstreamUnavailable } from "./gateway/nats.ts";
import { openApiDocument } from "./gateway/openapi.ts";
import {
  type FieldError,
  fieldError,
  invalidBody,
  isProblemKind,
  type ProblemDocument,
  type ProblemKind,
  problem,
  problemResponse,
} from "./gateway/problems.ts";
import { parseRpcBody, type RpcIntent } from "./gateway/schema.ts";
import type { GatewayTriggers } from "./gateway/triggers.ts";
import { creatorOnly, jobRoutes } from "./jobs.ts";

export const GATEWAY_VERSION = "0.1.0";

/** Who may call, and how their requests are checked (lib/security/http). */
export interface GatewayAuth {
  keys: KeyRegistry;
  /** Shared by every instance that must refuse each other's replays. */
  replay: ReplayStore;
  /** Tolerated clock difference, both ways (default 30 s). */
  maxSkewSeconds?: number;
  /** How long after `created` a signature is accepted (default 300 s). */
  maxAgeSeconds?: number;
}

export interface GatewayDeps {
  config: GatewayConfig;
  /** The gateway's own Choria certificate and key; privileged, so it may sign for any caller id. */
  signer: RequestSigner;
  nats: NatsSource;
  auth: GatewayAuth;
  /** One call per decision; `auditLine` turns it into the JSON line. */
  audit?: (event: AuditEvent) => void;
  now?: () => number;
  /** Async requests and /v1/jobs; without it async requests are refused as async-unavailable. */
  jobs?: JobStoreSource;
  /** Trigger data and locks (kvDataStore); needed by triggers that take locks or read data. */
  data?: DataStoreSource;
  /** Webhook triggers, `POST /v1/hooks/<name>` (loadTriggers); they run as jobs, so `jobs` too. */
  triggers?: GatewayTriggers;
}

/** Who a request runs as: an HTTP key, or a trigger acting for its webhook sender. */
interface RunCaller {
  /** Owns the jobs the request makes (and scopes its Idempotency-Keys). */
  keyId: string;
  callerId: string;
  policy: Policy;
}

interface Run {
  startedAt: number;
  authStarted: number;
  context: Partial<AuditEvent>;
  caller: RunCaller;
  intent: RpcIntent;
  respondAsync: boolean;
  idempotency?: Required<CreateOptions>;
  trigger?: TriggerRun;
}

/** What a webhook trigger adds to a run: where it came from, its locks, and what happens at its end. */
interface TriggerRun {
  record: Record<string, string>;
  /** Sorted and without repeats. */
  locks: string[];
  lockTimeoutMs: number;
  /** Shown as the locks' holder: trigger and delivery. */
  holder: string;
  onComplete: JobDataAction[];
  respond?: { status: number; body: unknown };
}

// A trigger's locks outlive its job's deadline by this much, so that the collectors can release them
// first; a lock whose job was lost (every collector down) still frees itself at the end of it.
const LOCK_GRACE_MS = 30_000;

/** Thrown by steps of a request that end it with a problem document. */
class Refusal extends Error {
  constructor(
    readonly doc: ProblemDocument,
    readonly headers: Record<string, string> = {},
  ) {
    super(doc.detail);
  }
}

const refuse = (kind: ProblemKind, detail: string, extensions?: Record<string, unknown>) =>
  new Refusal(problem(kind, detail, extensions));

export function createGateway(deps: GatewayDeps): Hono {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const senderid = config.identity ?? deps.signer.certname;
  const openapi = JSON.stringify(openApiDocument(GATEWAY_VERSION));
  const keyCallbacks = defaultCallbacks(deps.auth.keys);
  const app = new Hono();

  /** Every refusal: one audit line, then its problem document. */
  const refused = (err: unknown, context: Partial<AuditEvent>): Response => {
    const refusal = asRefusal(err);
    deps.audit?.({
      ...context,
      decision: "refused",
      reason: kindOf(refusal.doc),
      detail: refusal.doc.detail,
      status: refusal.doc.status,
    });
    return problemResponse(refusal.doc, refusal.headers);
  };

  app.get("/healthz", (c) => c.json({ status: "ok", nats: deps.nats.status() }));
  app.get("/v1/openapi.json", (c) => c.body(openapi, 200, { "content-type": "application/json" }));

  app.post("/v1/rpc", async (c) => {
    const startedAt = now();
    const request = c.req.raw;
    const context: Partial<AuditEvent> = { method: request.method, path: new URL(request.url).pathname };
    try {
      const mediaType = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
      if (mediaType !== "application/json")
        throw refuse("unsupported-media-type", "send the request body as application/json");
      const body = await readBody(request, config.maxBodyBytes);

      const authStarted = now();
      const auth = await authenticateOrFail(
        { method: request.method, url: publicUrl(request.url, config), headers: request.headers, body },
        deps.auth,
        new Date(now()),
      );
      const key = auth.key;
      Object.assign(context, {
        key: key.id,
        caller: key.caller,
        scheme: key.scheme,
        callerid: key.callerId,
        ...(auth.nonce === undefined ? {} : { nonce: auth.nonce }),
      });

      const intent = parseIntent(body, config);
      const respondAsync =
        intent.mode === "async" || (intent.mode === "sync" && prefersAsync(request.headers.get("prefer")));
      const idempotency = idempotencyKeyOf(request.headers);
      return await execute(c, {
        startedAt,
        authStarted,
        context,
        caller: { keyId: key.id, callerId: key.callerId, policy: key.policy },
        intent,
        respondAsync,
        ...(idempotency === undefined
          ? {}
          : { idempotency: { idempotencyKey: idempotency, fingerprint: await sha256Hex(body) } }),
      });
    } catch (err) {
      return refused(err, context);
    }
  });

  /**
   * Runs an authenticated, validated request: policy, discovery, then the RPC, collected here (sync),
   * streamed, or handed to the collectors as a job (async, a sync request that may outlast its budget, a
   * trigger run). Throws a Refusal, which the route turns into its problem document.
   */
  async function execute(c: Context, run: Run): Promise<Response> {
    const { startedAt, context, intent, respondAsync, caller } = run;
    const request = c.req.raw;
    let lease: NatsLease | undefined;
    let released = false;
    const release = () => {
      if (lease === undefined || released) return;
      released = true;
      void lease.release();
    };
    let heldLocks: Lock[] = [];
    try {
      if (respondAsync && deps.jobs === undefined)
        throw refuse("async-unavailable", "this gateway answers synchronously only; send mode sync");
      const collectives = config.clusters[intent.cluster];
      if (collectives === undefined)
        throw refuse("unknown-cluster", `this gateway does not publish into cluster ${intent.cluster}`);
      const collective = intent.collective ?? collectives[0]!;
      Object.assign(context, {
        cluster: intent.cluster,
        collective,
        agent: intent.agent,
        action: intent.action,
      });
      if (!collectives.includes(collective))
        throw refuse(
          "unknown-collective",
          `cluster ${intent.cluster} does not reach collective ${collective}`,
        );
      const policyIntent: PolicyIntent = {
        cluster: intent.cluster,
        collective,
        agent: intent.agent,
        action: intent.action,
        filter: intent.filter,
        ...(intent.nodes === undefined ? {} : { nodes: uniqueTargets(intent.nodes).length }),
        timeoutSeconds: intent.timeoutMs / 1000,
        broadcast: intent.mode === "broadcast",
      };
      authorizeOrRefuse(caller.policy, policyIntent);

      const plan = planOf(intent, collective, config);
      const format = chooseFormat(request.headers.get("accept"));
      // A sync request that may outlast its wait budget runs as a job too, so that it can still answer
      // 202 when the budget is spent; its replies then go to the collectors.
      const viaJob =
        deps.jobs !== undefined &&
        (respondAsync || (format === "json" && worstCaseMs(plan) > config.syncBudgetMs));
      const store = viaJob ? await openJobStore(deps.jobs!) : undefined;

      const answerWithJob = async (started: StartedJob, timing: ServerTiming, targets?: Targets) => {
        release();
        let settled: JobRecord | undefined;
        if (!respondAsync && started.record !== undefined) {
          const waitMs = startedAt + config.syncBudgetMs - now();
          settled = await settledWithin(store!, started.record, waitMs, request.signal);
        }
        const requestId = started.requestId ?? started.record?.request_id;
        deps.audit?.({
          ...context,
          decision: "accepted",
          status: settled === undefined ? (run.trigger?.respond?.status ?? 202) : 200,
          job_id: started.jobId,
          ...(requestId === undefined ? {} : { request_id: requestId }),
          targets: targets?.identities?.length ?? started.record?.targets ?? null,
        });
        if (settled !== undefined) {
          const results = [];
          for await (const result of store!.results(settled)) results.push(result);
          const discovered = targets?.discovered ?? (settled.targets > 0 ? settled.targets : undefined);
          const result = jobAsRpcResult(settled, results, {
            ...(discovered === undefined ? {} : { discovered }),
            ...(targets?.discoveryMs === undefined ? {} : { discoveryMs: targets.discoveryMs }),
            elapsedMs: now() - startedAt,
          });
          return c.json(result, 200, { "server-timing": timing.header() });
        }
        return jobAccepted(c, started.jobId, {
          respond: run.trigger?.respond,
          headers: {
            "server-timing": timing.header(),
            ...(intent.mode === "sync" && respondAsync ? { "preference-applied": "respond-async" } : {}),
          },
        });
      };

      if (store !== undefined && run.idempotency !== undefined) {
        // A repeat finds its job before discovery, so that it costs the fleet nothing.
        const prior = await store.findClaimed(caller.keyId, run.idempotency);
        if (prior !== undefined) return await answerWithJob(startedOf(prior), new ServerTiming());
      }

      if (run.trigger !== undefined && run.trigger.locks.length > 0)
        heldLocks = await takeLocks(run.trigger, worstCaseMs(plan) + LOCK_GRACE_MS);

      const acquireStarted = now();
      lease = await deps.nats.acquire();
      const timing = new ServerTiming()
        .add("auth", acquireStarted - run.authStarted, "authentication, validation and policy")
        .add("nats", now() - acquireStarted, "getting a NATS connection");
      const bus = lease.bus;
      const client: ClientIdentity = { signer: deps.signer, callerid: caller.callerId, senderid };
      const abort = new AbortController();
      const clientGone = () => abort.abort();
      request.signal.addEventListener("abort", clientGone, { once: true });
      // A PING round trip runs beside discovery: a connection that looks up but no longer reaches the
      // server (a frozen Lambda, a half-open socket) ends the request instead of running into its timeout.
      const alive = confirm(bus, config.connectTimeoutMs);
      void alive.then((ok) => ok || abort.abort());
      const upstreamLost = async () => (await valueWithin(alive, 0)) === false;

      const targets = await resolveTargets(bus, client, plan, { signal: abort.signal, now });
      if (targets.discoveryMs !== undefined) timing.add("discovery", targets.discoveryMs, "discovery");
      if (targets.cancelled && (await upstreamLost()))
        throw refuse("timeout", `NATS did not answer a ping within ${config.connectTimeoutMs} ms`);
      if (targets.identities !== undefined)
        authorizeOrRefuse(caller.policy, { ...policyIntent, nodes: targets.identities.length });

      if (store !== undefined) {
        if (targets.cancelled) throw refuse("timeout", "the request ended before its targets were known");
        // Sync: this request collects its own copy of the replies the collectors store, until the
        // budget is spent; then the job carries on without it.
        const budget = AbortSignal.timeout(Math.max(0, startedAt + config.syncBudgetMs - now()));
        let collected: RpcResult | undefined;
        const started = await startJob({
          store,
          job: {
            caller: caller.keyId,
            cluster: intent.cluster,
            ...(run.trigger === undefined ? {} : { trigger: run.trigger.record }),
            ...(heldLocks.length === 0 && (run.trigger?.onComplete.length ?? 0) === 0
              ? {}
              : {
                  effects: {
                    locks: heldLocks.map((lock) => ({ name: lock.name, token: lock.token })),
                    data: run.trigger?.onComplete ?? [],
                  },
                }),
          },
          plan,
          targets,
          callback: intent.callback ?? keyCallbacks.get(caller.keyId),
          idempotency: run.idempotency,
          callerid: client.callerid,
          send: async (route) => {
            if (respondAsync) return publishRpc(bus, client, plan, targets, route);
            collected = await sendRpc(bus, client, plan, targets, {
              signal: AbortSignal.any([abort.signal, budget]),
              startedAt,
              now,
              route,
            });
          },
        }).finally(() => request.signal.removeEventListener("abort", clientGone));
        // From here the job owns the locks: the collectors release them when it ends. Unless another
        // request with the same key made the job, and ours are left over.
        if (started.created) heldLocks = [];
        else await releaseAll(heldLocks);
        if (collected !== undefined && !(collected.summary.done === "cancelled" && budget.aborted)) {
          if (collected.summary.done === "cancelled" && (await upstreamLost()))
            throw refuse("timeout", `NATS did not answer a ping within ${config.connectTimeoutMs} ms`);
          release();
          deps.audit?.({
            ...context,
            decision: "accepted",
            status: 200,
            job_id: started.jobId,
            request_id: collected.request_id,
            targets: targets.identities?.length ?? collected.summary.expected,
          });
          return c.json({ ...collected, job_id: started.jobId }, 200, {
            "server-timing": timing
              .add("rpc", now() - startedAt, "signing, publishing and collecting")
              .header(),
          });
        }
        return await answerWithJob(started, timing, targets);
      }

      const accepted = (requestId: string, expected: number | null) =>
        deps.audit?.({
          ...context,
          decision: "accepted",
          status: 200,
          request_id: requestId,
          targets: targets.identities?.length ?? expected,
        });

      if (format === "json") {
        const rpcStarted = now();
        const result = await sendRpc(bus, client, plan, targets, {
          signal: abort.signal,
          startedAt,
          now,
          onStart: (start) => accepted(start.requestId, start.expected),
        }).finally(() => request.signal.removeEventListener("abort", clientGone));
        if (result.summary.done === "cancelled" && (await upstreamLost()))
          throw refuse("timeout", `NATS did not answer a ping within ${config.connectTimeoutMs} ms`);
        release();
        const rpcMs = now() - rpcStarted;
        return c.json(result, 200, {
          "server-timing": timing.add("rpc", rpcMs, "signing, publishing and collecting").header(),
        });
      }
      const streamingLease = lease;
      lease = undefined;
      return streamResponse(format, abort, timing.header(), async (emit) => {
        try {
          const result = await sendRpc(bus, client, plan, targets, {
            signal: abort.signal,
            startedAt,
            now,
            onStart: (start) => {
              accepted(start.requestId, start.expected);
              emit({
                type: "start",
                request_id: start.requestId,
                discovered: start.discovered,
                expected: start.expected,
              });
            },
            onReply: (entry) => emit({ type: "reply", ...entry }),
          });
          if (result.summary.done === "cancelled" && (await upstreamLost())) {
            const doc = problem("timeout", `NATS did not answer a ping within ${config.connectTimeoutMs} ms`);
            emit({ ...doc, type: "error" });
          } else {
            emit(summaryEvent(result));
          }
        } finally {
          request.signal.removeEventListener("abort", clientGone);
          void streamingLease.release();
        }
      });
    } catch (err) {
      release();
      await releaseAll(heldLocks);
      throw err;
    }
  }

  /** 202 and where to read the job, or a trigger's own answer (with the job's Location all the same). */
  function jobAccepted(
    c: Context,
    jobId: string,
    options: { respond?: { status: number; body: unknown } | undefined; headers?: Record<string, string> },
  ): Response {
    const location = `/v1/jobs/${jobId}`;
    const headers = { location, "cache-control": "no-store", ...options.headers };
    const respond = options.respond;
    if (respond !== undefined)
      return respond.body === undefined
        ? c.body(null, respond.status as ContentfulStatusCode, headers)
        : c.json(respond.body, respond.status as ContentfulStatusCode, headers);
    return c.json(
      { job_id: jobId, status_url: new URL(location, publicUrl(c.req.url, config)).href },
      202,
      headers,
    );
  }

  /** Every lock of a trigger run, or a lock-timeout refusal (and none held) when one cannot be had. */
  async function takeLocks(trigger: TriggerRun, ttlMs: number): Promise<Lock[]> {
    const locks = new Locks(await openDataStore(deps.data));
    const held: Lock[] = [];
    try {
      // Names come sorted from the trigger, so two runs never each hold what the other waits for.
      for (const name of trigger.locks) {
        const lock = await locks.acquire(name, {
          holder: trigger.holder,
          ttlMs,
          timeoutMs: trigger.lockTimeoutMs,
        });
        if (lock === undefined) {
          const state = await locks.inspect(name).catch(() => undefined);
          throw refuse(
            "lock-timeout",
            `lock ${name} is held${state ? ` by ${state.holder} until ${new Date(state.expiresAt).toISOString()} at the latest` : ""}; waited ${trigger.lockTimeoutMs} ms`,
            { lock: name },
          );
        }
        held.push(lock);
      }
      return held;
    } catch (err) {
      await releaseAll(held);
      if (err instanceof Refusal) throw err;
      throw dataStoreUnavailable(err);
    }
  }

  if (deps.jobs !== undefined) {
    const jobs = deps.jobs;
    let routes: { store: unknown; app: Hono } | undefined;
    app.on(["GET", "DELETE"], ["/v1/jobs/:id", "/v1/jobs/:id/events"], async (c) => {
      const request = c.req.raw;
      const context: Partial<AuditEvent> = { method: request.method, path: new URL(request.url).pathname };
      try {
        const body = await readBody(request, config.maxBodyBytes);
        const { key } = await authenticateOrFail(
          { method: request.method, url: publicUrl(request.url, config), headers: request.headers, body },
          deps.auth,
          new Date(now()),
        );
        Object.assign(context, { key: key.id, caller: key.caller, scheme: key.scheme });
        const store = await openJobStore(jobs);
        if (routes?.store !== store)
          routes = {
            store,
            app: jobRoutes({
              store,
              callerKeyId: (jc) => (jc.env as JobsEnv).keyId,
              authorize: (keyId, job) => {
                if (creatorOnly(keyId, job)) return true;
                const policy = deps.auth.keys.get(keyId)?.policy;
                // Records written before jobs kept their cluster cannot be checked: they stay their creator's.
                return (
                  policy !== undefined &&
                  job.cluster !== null &&
                  mayReadJob(policy, { ...job, cluster: job.cluster })
                );
              },
            }),
          };
        const env: JobsEnv = { keyId: key.id };
        const response = await routes.app.fetch(request, env);
        deps.audit?.({ ...context, decision: response.ok ? "accepted" : "refused", status: response.status });
        return response;
      } catch (err) {
        return refused(err, context);
      }
    });
  }

  if (deps.triggers !== undefined) {
    const triggers = deps.triggers;
    app.post("/v1/hooks/:name", async (c) => {
      const startedAt = now();
      const request = c.req.raw;
      const name = c.req.param("name");
      const context: Partial<AuditEvent> = {
        method: request.method,
        path: new URL(request.url).pathname,
        trigger: name,
      };
      try {
        const trigger = triggers.set.get(name);
        if (trigger === undefined) throw refuse("unknown-trigger", "no trigger by this name");
        const body = await readBody(request, config.maxBodyBytes);
        const authStarted = now();
        const delivery = await verifyDelivery(trigger, request, body);
        Object.assign(context, {
          caller: trigger.caller,
          scheme: delivery.scheme,
          callerid: trigger.callerId,
          delivery_id: delivery.id,
          ...(delivery.event === undefined ? {} : { event: delivery.event }),
        });
        const payload = parsePayload(request.headers.get("content-type"), body);
        if (!payload.ok) throw refuse("unsupported-payload", payload.detail);

        // A delivery the sender retries (or an attacker replays) gets its first job back: no conditions,
        // no data reads, no locks, nothing sent.
        const idempotency = {
          idempotencyKey: `${trigger.name}:${delivery.id}`,
          fingerprint: await sha256Hex(body),
        };
        const store = await openJobStore(deps.jobs!);
        const prior = await store.findClaimed(trigger.caller, idempotency);
        if (prior !== undefined) {
          const started = startedOf(prior);
          deps.audit?.({ ...context, decision: "accepted", status: 202, job_id: started.jobId });
          return jobAccepted(c, started.jobId, { respond: trigger.respond });
        }

        const data = deps.data;
        const outcome = await evaluateTrigger(
          trigger,
          { payload: payload.payload, headers: request.headers },
          async (key) => (await (await openDataStore(data)).get(key))?.value,
        );
        if (outcome.kind === "skip") {
          deps.audit?.({ ...context, decision: "skipped", status: 200, detail: outcome.reason });
          return c.json({ skipped: true, reason: outcome.reason }, 200, { "cache-control": "no-store" });
        }
        if (outcome.kind === "invalid")
          throw new Refusal(
            problem("invalid-input", `${outcome.errors[0]!.field}: ${outcome.errors[0]!.detail}`, {
              errors: outcome.errors,
            }),
          );
        const intent = intentOf(outcome.body, config, "invalid-input");
        return await execute(c, {
          startedAt,
          authStarted,
          context,
          caller: { keyId: trigger.caller, callerId: trigger.callerId, policy: trigger.policy },
          intent,
          respondAsync: true,
          idempotency,
          trigger: {
            record: {
              trigger: trigger.name,
              delivery_id: delivery.id,
              sender: delivery.scheme,
              ...(delivery.event === undefined ? {} : { event: delivery.event }),
            },
            locks: outcome.locks,
            lockTimeoutMs: trigger.lockTimeoutMs,
            holder: `${trigger.name}/${delivery.id}`.slice(0, 256),
            onComplete: jobDataActions(outcome.onComplete),
            ...(trigger.respond === undefined ? {} : { respond: trigger.respond }),
          },
        });
      } catch (err) {
        return refused(err, context);
      }
    });
  }

  /** Who sent a webhook, checked the way its sender signs; a Refusal when the signature does not hold. */
  async function verifyDelivery(
    trigger: Trigger,
    request: Request,
    body: Uint8Array,
  ): Promise<{ id: string; scheme: string; event?: string }> {
    const scheme = trigger.verify.scheme;
    if (scheme === "rfc9421") {
      const auth = await authenticateOrFail(
        { method: request.method, url: publicUrl(request.url, config), headers: request.headers, body },
        deps.auth,
        new Date(now()),
      );
      if (!trigger.verify.keys.includes(auth.key.id))
        throw refuse("forbidden", `key ${auth.key.id} may not call this trigger`);
      // Callers name their delivery with Idempotency-Key; the replay store has refused a second use of
      // the signature already, so without one each signed request is a delivery of its own.
      const id =
        idempotencyKeyOf(request.headers) ??
        auth.nonce ??
        (await sha256Hex(new TextEncoder().encode(request.headers.get("signature") ?? "")));
      return { id, scheme };
    }
    const verdict = await verifyWebhook(
      scheme,
      deps.triggers!.secrets.get(trigger.name) ?? {},
      { headers: request.headers, body },
      { now: new Date(now()) },
    );
    if (!verdict.ok) throw new Refusal(problem(WEBHOOK_REFUSALS[verdict.reason], verdict.detail));
    return {
      id: verdict.deliveryId,
      scheme,
      ...(verdict.event === undefined ? {} : { event: verdict.event }),
    };
  }

  for (const [path, allow] of [
    ["/v1/rpc", "POST"],
    ["/v1/hooks/:name", "POST"],
    ["/v1/openapi.json", "GET, HEAD"],
    ["/healthz", "GET, HEAD"],
  ] as const) {
    app.all(path, (c) =>
      problemResponse(problem("method-not-allowed", `${c.req.method} is not allowed on ${path}`), {
        allow,
      }),
    );
  }
  app.notFound((c) => problemResponse(problem("not-found", `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((err) => problemResponse(problem("internal", `the gateway failed: ${errorText(err)}`)));
  return app;
}

interface JobsEnv {
  keyId: string;
}

/** Each key's default completion callback, checked once; throws naming the key whose callback is wrong. */
function defaultCallbacks(keys: KeyRegistry): Map<string, CallbackTarget> {
  const callbacks = new Map<string, CallbackTarget>();
  for (const key of keys.all()) {
    if (key.callback === undefined) continue;
    const parsed = callbackTargetSchema.safeParse(key.callback);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`key ${key.id}: callback.${issue.path.join(".")}: ${issue.message}`);
    }
    callbacks.set(key.id, parsed.data);
  }
  return callbacks;
}

/** RFC 7240: `Prefer: respond-async`, among other preferences. */
function prefersAsync(prefer: string | null): boolean {
  return (prefer ?? "").split(",").some((p) => p.split(";")[0]?.trim().toLowerCase() === "respond-async");
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function idempotencyKeyOf(headers: Headers): string | undefined {
  const value = headers.get("idempotency-key");
  if (value === null) return undefined;
  // The header's value is an RFC 8941 string; the quotes are optional here, as most clients leave them out.
  const unquoted = value.trim().replace(/^"(.*)"$/, "$1");
  if (!IDEMPOTENCY_KEY.test(unquoted))
    throw refuse("invalid-body", "Idempotency-Key: 1 to 255 printable ASCII characters without spaces");
  return unquoted;
}

interface JobStart {
  store: JobStore;
  /** Who asked (the key id, the only one who may read the job by default) and where. */
  job: Pick<NewJob, "caller" | "cluster" | "trigger" | "effects">;
  plan: RpcPlan;
  targets: Targets;
  callback: RpcIntent["callback"] | undefined;
  idempotency: Required<CreateOptions> | undefined;
  /** The Choria caller id the request is signed for: its replies' subject is derived from it. */
  callerid: string;
  /** Sends the request with the job's id and the collectors' reply subject; throws PublishRefused. */
  send: (route: { requestId: string; replyTo: string }) => Promise<void>;
}

interface StartedJob {
  jobId: string;
  requestId?: string;
  record?: JobRecord;
  /** This request made the job (rather than finding it made for its Idempotency-Key). */
  created: boolean;
}

function startedOf(outcome: CreateOutcome): StartedJob {
  switch (outcome.outcome) {
    case "conflict":
      throw refuse(
        "idempotency-conflict",
        "this Idempotency-Key was used for a different request; use a new key for a new request",
        { job_id: outcome.jobId },
      );
    case "in_progress":
      return { jobId: outcome.jobId, created: false };
    case "existing":
    case "created":
      return {
        jobId: outcome.job.id,
        requestId: outcome.job.request_id,
        record: outcome.job,
        created: outcome.outcome === "created",
      };
  }
}

/** The longest a request can take before its collection ends: discovery, then the RPC's timeout. */
function worstCaseMs(plan: RpcPlan): number {
  return (plan.addressing.kind === "discover" ? plan.addressing.timeoutMs : 0) + plan.timeoutMs;
}

async function openDataStore(data: DataStoreSource | undefined) {
  if (data === undefined) throw new Error("this gateway has no data store");
  return data.store().catch((err: unknown) => {
    throw dataStoreUnavailable(err);
  });
}

function dataStoreUnavailable(err: unknown): Refusal {
  return new Refusal(problem("data-store-unavailable", `cannot reach the data store: ${errorText(err)}`), {
    "retry-after": "1",
  });
}

/** Releases what is still ours; a lock that ran out meanwhile is someone else's and is left alone. */
async function releaseAll(locks: readonly Lock[]): Promise<void> {
  await Promise.all(locks.map((lock) => lock.release().catch(() => false)));
}

async function openJobStore(jobs: JobStoreSource): Promise<JobStore> {
  return jobs.store().catch((err: unknown) => {
    throw new Refusal(problem("upstream-unavailable", `cannot reach the jobs store: ${errorText(err)}`), {
      "retry-after": "1",
    });
  });
}

/** The job once settled, or undefined when `ms` pass (or the client goes) first. */
async function settledWithin(
  store: JobStore,
  record: JobRecord,
  ms: number,
  clientSignal: AbortSignal,
): Promise<JobRecord | undefined> {
  if (record.settled) return record;
  if (ms <= 0) return undefined;
  const signal = AbortSignal.any([AbortSignal.timeout(ms), clientSignal]);
  return store.settled(record, signal);
}

/**
 * Creates the job, then sends the request with the collectors' reply subject. A request whose
 * Idempotency-Key made a job before gets that job back and sends nothing.
 */
async function startJob(start: JobStart): Promise<StartedJob> {
  const { plan, targets, store } = start;
  const requestId = newRequestId();
  const outcome = await store.create(
    {
      request_id: requestId,
      ...start.job,
      collective: plan.collective,
      agent: plan.agent,
      action: plan.action,
      ...(targets.identities === undefined ? {} : { targets: targets.identities }),
      ...(plan.expect === undefined ? {} : { expect: plan.expect }),
      timeout_ms: plan.timeoutMs,
      ...(start.callback === undefined ? {} : { callback: start.callback }),
    },
    start.idempotency ?? {},
  );
  const started = startedOf(outcome);
  if (outcome.outcome !== "created") return started;
  if (targets.identities?.length === 0 || plan.expect === 0) return started;
  try {
    await start.send({
      requestId,
      replyTo: jobReplySubject(plan.collective, start.callerid, outcome.job.id),
    });
  } catch (err) {
    // NATS refused the request, so no node has it: end the job, and free its Idempotency-Key so that the
    // caller's retry runs the request instead of getting back a job that never went out.
    if (err instanceof PublishRefused) {
      await endJob(store, outcome.job.id, "cancel").catch(() => {});
      if (start.idempotency !== undefined)
        await store.bucket
          .delete(await idempotencyKey(start.job.caller, start.idempotency.idempotencyKey))
          .catch(() => {});
    }
    throw err;
  }
  return started;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function authorizeOrRefuse(policy: Policy, intent: PolicyIntent): void {
  const decision = authorize(policy, intent);
  if (!decision.ok) throw refuse("forbidden", decision.detail);
}

type Authenticated = Extract<AuthResult, { ok: true }>;

/**
 * The caller's key (and the nonce it used), or a Refusal: an authentication problem as its problem document, and a replay store
 * that cannot answer as a 503, so that the request fails closed.
 */
async function authenticateOrFail(
  request: HttpRequestParts,
  auth: GatewayAuth,
  now: Date,
): Promise<Authenticated> {
  let result: AuthResult;
  try {
    result = await authenticate(request, {
      keys: auth.keys,
      replay: auth.replay,
      now,
      ...(auth.maxSkewSeconds === undefined ? {} : { maxSkewSeconds: auth.maxSkewSeconds }),
      ...(auth.maxAgeSeconds === undefined ? {} : { maxAgeSeconds: auth.maxAgeSeconds }),
    });
  } catch (err) {
    throw new Refusal(problem("replay-store-unavailable", `cannot check for replays: ${errorText(err)}`), {
      "retry-after": "1",
    });
  }
  if (!result.ok)
    throw new Refusal({ ...problem(authProblemKind(result.problem), result.detail), status: result.status });
  return result;
}

/** lib/security/http's reason codes as problem kinds: the same words, kebab-cased. */
function authProblemKind(code: AuthProblem): ProblemKind {
  if (code === "body_too_large") return "payload-too-large";
  const kind = code.replaceAll("_", "-");
  return isProblemKind(kind) ? kind : "bad-signature";
}

/**
 * The URL the caller signed. Behind a proxy or load balancer the request arrives for an internal address;
 * `publicUrl` restores the origin callers use, since signatures cover it.
 */
function publicUrl(url: string, config: GatewayConfig): string {
  if (config.publicUrl === undefined) return url;
  const received = new URL(url);
  return new URL(`${received.pathname}${received.search}`, config.publicUrl).href;
}

function parseIntent(body: Uint8Array, config: GatewayConfig): RpcIntent {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (err) {
    throw new Refusal(invalidBody([fieldError([], `not JSON: ${errorText(err)}`)]));
  }
  return intentOf(json, config, "invalid-body");
}

/**
 * A request body as the gateway runs it. A trigger's rendered request is checked the same way, its
 * errors reported as `invalid-input`: the delivery's values made it so.
 */
function intentOf(json: unknown, config: GatewayConfig, kind: "invalid-body" | "invalid-input"): RpcIntent {
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

/** What a webhook verifier's refusal is as a problem. */
const WEBHOOK_REFUSALS: Record<WebhookRefusalReason, ProblemKind> = {
  missing_signature: "missing-credentials",
  malformed_signature: "malformed-signature",
  bad_signature: "bad-signature",
  stale: "stale",
  missing_delivery_id: "missing-delivery-id",
};

function planOf(intent: RpcIntent, collective: string, config: GatewayConfig): RpcPlan {
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
  };
}

/**
 * Reads the body, refusing it as soon as it is known to be over `max` bytes: from Content-Length before
 * reading anything, otherwise while reading, so an oversized body is never held in full.
 */
async function readBody(request: Request, max: number): Promise<Uint8Array> {
  const tooLarge = (size: string) =>
    refuse("payload-too-large", `${size} is over the ${max} byte limit`, { limit: max });
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > max) throw tooLarge(`a body of ${declared} bytes`);
  if (declared !== null) {
    // The length is known and allowed: read it in one go (the runtimes' fast path, no stream per chunk).
    const body = new Uint8Array(await request.arrayBuffer());
    if (body.byteLength > max) throw tooLarge("the body");
    return body;
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge("the body");
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** Resolves true once the server answered a PING, false if it did not within `ms`. Never rejects. */
function confirm(bus: MessageBus, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    bus.flush().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The value of a promise if it settles within `ms`, else undefined. */
async function valueWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function streamResponse(
  format: "ndjson" | "sse",
  abort: AbortController,
  serverTiming: string,
  run: (emit: (event: StreamEvent) => void) => Promise<void>,
): Response {
  const encoder = new TextEncoder();
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      // Called from reply callbacks: it must never throw, even when the client has gone.
      const emit = (event: StreamEvent) => {
        if (!open) return;
        try {
          controller.enqueue(encoder.encode(encodeEvent(format, event)));
        } catch {
          open = false;
        }
      };
      void run(emit)
        .catch((err: unknown) => emit({ ...asRefusal(err).doc, type: "error" }))
        .finally(() => {
          if (!open) return;
          open = false;
          controller.close();
        });
    },
    cancel() {
      open = false;
      abort.abort();
    },
  });
  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": format === "sse" ? `${MEDIA_TYPES.sse}; charset=utf-8` : MEDIA_TYPES.ndjson,
      "cache-control": "no-store",
      "x-accel-buffering": "no",
      "server-timing": serverTiming,
    },
  });
}

/** The `Server-Timing` header: where a request's time went, for callers and benchmarks. */
class ServerTiming {
  readonly #entries: string[] = [];

  add(name: string, ms: number, description: string): this {
    this.#entries.push(`${name};dur=${Math.max(0, ms)};desc="${description}"`);
    return this;
  }

  header(): string {
    return this.#entries.join(", ");
  }
}

function asRefusal(err: unknown): Refusal {
  if (err instanceof Refusal) return err;
  if (err instanceof UpstreamUnavailable)
    return new Refusal(problem("upstream-unavailable", err.message), { "retry-after": "1" });
  if (err instanceof PublishRefused)
    return new Refusal(problem("upstream-unavailable", err.message), { "retry-after": "1" });
  return new Refusal(problem("internal", `the gateway failed: ${errorText(err)}`));
}

function kindOf(doc: ProblemDocument): string {
  return doc.type.slice(doc.type.lastIndexOf("/") + 1);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
