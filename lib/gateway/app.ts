// The edge gateway as one Hono app for every runtime: signed HTTPS in, federated Choria RPC out. Each
// runtime entry (node.ts, lambda.ts, cloudflare.ts) builds the dependencies (signer, NATS source, key
// registry) its own way and hands them to createGateway.
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ClientIdentity } from "../client/mod.ts";
import { type KeepAlive, type Lock, LockLost, Locks } from "../data/mod.ts";
import type { Logger } from "../log/mod.ts";
import { depthDetail, jsonDepthExceeds } from "../protocol/mod.ts";
import type { CallbackTarget, CreateOptions, JobDataAction, JobRecord } from "../results/jobs/mod.ts";
import { importSealKey, jobAsRpcResult, sealSecret } from "../results/jobs/mod.ts";
import type { RpcResult } from "../results/mod.ts";
import {
  chooseFormat,
  publishRpc,
  type RpcPlan,
  resolveTargets,
  sendRpc,
  summaryEvent,
  type Targets,
  uniqueTargets,
} from "../results/mod.ts";
import {
  type AuditEvent,
  authorize,
  type CallbackIntent,
  type KeyRegistry,
  mayReadJob,
  type Policy,
  type PolicyIntent,
  type ReplayStore,
} from "../security/http/mod.ts";
import type { RequestSigner } from "../security/mod.ts";
import type { WebhookRefusalReason } from "../security/webhooks/mod.ts";
import { verifyWebhook } from "../security/webhooks/mod.ts";
import {
  type Delivery,
  describeCondition,
  evaluateTrigger,
  firstFailingCondition,
  jobDataActions,
  parsePayload,
  type Trigger,
} from "../triggers/mod.ts";
import type { DataStoreSource } from "./buckets.ts";
import type { GatewayConfig } from "./config.ts";
import {
  authenticateOrFail,
  confirm,
  idempotencyKeyOf,
  prefersAsync,
  publicUrl,
  readBody,
  ServerTiming,
  sha256Hex,
  streamResponse,
  valueWithin,
} from "./http.ts";
import {
  dataStoreUnavailable,
  defaultCallbacks,
  openDataStore,
  openJobStore,
  releaseAll,
  type StartedJob,
  settledWithin,
  startedOf,
  startJob,
  worstCaseMs,
} from "./job-run.ts";
import type { JobStoreSource } from "./job-store.ts";
import { creatorOnly, jobRoutes } from "./jobs.ts";
import type { NatsLease, NatsSource } from "./nats.ts";
import { openApiDocument } from "./openapi.ts";
import {
  type FieldError,
  fieldError,
  invalidBody,
  type ProblemKind,
  problem,
  problemResponse,
} from "./problems.ts";
import { asRefusal, internalFailure, kindOf, Refusal, refuse } from "./refusal.ts";
import { parseRpcBody, type RpcIntent } from "./schema.ts";
import type { GatewayTriggers } from "./triggers.ts";

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
  /** Where failures of the gateway itself are told; callers only ever see a generic 500. */
  log?: Logger;
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
  /** The key's or trigger's callback, for requests that name none. */
  defaultCallback?: CallbackTarget | undefined;
  /** A sync body answered async because the caller sent `Prefer: respond-async`. */
  preferAsync?: boolean;
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

// While the gateway itself holds a trigger's locks (waiting for the others, discovering) they last this
// long and are renewed, so that a gateway that dies there frees them this soon.
const HOLD_TTL_MS = 15_000;
// Handed to the job, a trigger's locks outlive its deadline by this much, so that the collectors can
// release them first; a lock whose job was lost (every collector down) still frees itself then.
const LOCK_GRACE_MS = 30_000;

export function createGateway(deps: GatewayDeps): Hono {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const senderid = config.identity ?? deps.signer.certname;
  const openapi = JSON.stringify(openApiDocument(GATEWAY_VERSION));
  const keyCallbacks = defaultCallbacks(deps.auth.keys);
  // Callback secrets go into job records sealed (lib/results/jobs/sealed-secret.ts says why); a secret
  // the operator configured that could not be sealed is a start-up error, not a request's.
  const sealKey = config.callbackSealKey === undefined ? undefined : importSealKey(config.callbackSealKey);
  if (sealKey === undefined) {
    const configured = [
      ...[...keyCallbacks].map(([id, callback]) => ({ where: `key ${id}`, callback })),
      ...(deps.triggers?.set.names() ?? []).map((name) => ({
        where: `trigger ${name}`,
        callback: deps.triggers?.set.get(name)?.callback,
      })),
    ];
    for (const { where, callback } of configured)
      if (callback?.kind === "url" && callback.secret !== undefined)
        throw new Error(
          `${where}: a callback secret needs callbackSealKey (--callback-seal-key), so that job records do not hold it in clear`,
        );
  }
  /** The callback as the job record keeps it: a URL callback's secret sealed. */
  const sealed = async (callback: CallbackTarget | undefined): Promise<CallbackTarget | undefined> => {
    if (callback?.kind !== "url" || callback.secret === undefined) return callback;
    if (sealKey === undefined) throw new Error("a callback secret reached a gateway without callbackSealKey");
    const { secret, ...rest } = callback;
    return { ...rest, secret_sealed: await sealSecret(await sealKey, secret, callback.url) };
  };
  const app = new Hono();

  /** Every refusal: one audit line, then its problem document. */
  const refused = (err: unknown, context: Partial<AuditEvent>): Response => {
    const refusal = asRefusal(err, deps.log);
    const reason = kindOf(refusal.doc);
    deps.audit?.({
      ...context,
      decision: reason === "client-aborted" ? "aborted" : "refused",
      reason,
      detail: refusal.doc.detail,
      status: refusal.doc.status,
      ...refusal.audit,
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
        preferAsync: respondAsync && intent.mode === "sync",
        defaultCallback: keyCallbacks.get(key.id),
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
        throw refuse(
          "unknown-cluster",
          `this gateway does not publish into cluster ${intent.cluster}; it knows ${Object.keys(config.clusters).sort().join(", ") || "no cluster"}`,
        );
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
        ...(intent.nodes === undefined && intent.mode !== "broadcast"
          ? { discoveryTimeoutSeconds: intent.discoveryTimeoutMs / 1000 }
          : {}),
        broadcast: intent.mode === "broadcast",
        // Only a callback the request names is the caller's choice; a key's or trigger's own is config.
        ...(intent.callback === undefined ? {} : { callback: callbackIntent(intent.callback) }),
      };
      authorizeOrRefuse(caller.policy, policyIntent);
      if (intent.callback?.kind === "url" && intent.callback.secret !== undefined && sealKey === undefined)
        throw new Refusal(
          invalidBody([
            fieldError(
              ["callback", "secret"],
              "this gateway cannot keep callback secrets (no callback seal key); leave it out to be signed with the collectors' secret",
            ),
          ]),
        );

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
            ...(run.preferAsync ? { "preference-applied": "respond-async" } : {}),
          },
        });
      };

      // A repeat finds its job before discovery, so that it costs the fleet nothing. The hooks route has
      // looked already, before it evaluated the trigger.
      if (store !== undefined && run.idempotency !== undefined && run.trigger === undefined) {
        const prior = await store.findClaimed(caller.keyId, run.idempotency);
        if (prior !== undefined) return await answerWithJob(startedOf(prior), new ServerTiming());
      }

      if (run.trigger !== undefined && run.trigger.locks.length > 0) heldLocks = await takeLocks(run.trigger);

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
        await handOver(heldLocks, plan.timeoutMs + LOCK_GRACE_MS);
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
          callback: await sealed(intent.callback ?? run.defaultCallback),
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
      return streamResponse(format, abort, timing.header(), deps.log, async (emit) => {
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

  // The renewals of locks that requests hold themselves, stopped when a lock is handed to its job (a
  // release stops them too).
  const keepAlives = new WeakMap<Lock, KeepAlive>();

  /**
   * Every lock of a trigger run, kept alive while this request works, or a lock-timeout refusal (and
   * none held) when one cannot be had.
   */
  async function takeLocks(trigger: TriggerRun): Promise<Lock[]> {
    const locks = new Locks(await openDataStore(deps.data));
    const held: Lock[] = [];
    try {
      // Names come sorted from the trigger, so two runs never each hold what the other waits for.
      for (const name of trigger.locks) {
        const lock = await locks.acquire(name, {
          holder: trigger.holder,
          ttlMs: HOLD_TTL_MS,
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
        keepAlives.set(lock, lock.keepAlive());
      }
      return held;
    } catch (err) {
      await releaseAll(held);
      if (err instanceof Refusal) throw err;
      throw dataStoreUnavailable(err);
    }
  }

  /** The locks, renewed to last the job (its timeout and a grace), just before the job is made. */
  async function handOver(locks: readonly Lock[], ttlMs: number): Promise<void> {
    for (const lock of locks) {
      try {
        keepAlives.get(lock)?.stop();
        await lock.renew({ ttlMs });
      } catch (err) {
        if (!(err instanceof LockLost)) throw dataStoreUnavailable(err);
        throw refuse(
          "lock-timeout",
          `lock ${lock.name} was lost (${err.reason}) before the request went out`,
          {
            lock: lock.name,
          },
        );
      }
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
              ...(deps.log === undefined ? {} : { log: deps.log }),
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
        const body = await readBody(request, config.maxHookBodyBytes);
        const authStarted = now();
        const delivery = await verifyDelivery(trigger, request, body);
        Object.assign(context, {
          ...(delivery.key === undefined ? {} : { key: delivery.key }),
          caller: trigger.caller,
          scheme: delivery.scheme,
          callerid: trigger.callerId,
          delivery_id: delivery.id,
          ...(delivery.event === undefined ? {} : { event: delivery.event }),
        });
        const payload = parsePayload(request.headers.get("content-type"), body);
        if (!payload.ok && payload.tooDeep) throw new Refusal(invalidBody([fieldError([], depthDetail())]));
        if (!payload.ok) throw refuse("unsupported-payload", payload.detail);

        // A delivery the sender retries (or an attacker replays) gets its first job back: no conditions,
        // no data reads, no locks, nothing sent.
        const idempotency = {
          idempotencyKey: `${trigger.name}:${delivery.id}`,
          fingerprint: await sha256Hex(body),
        };
        const store = await openJobStore(deps.jobs!);
        const prior = await store.findClaimed(trigger.caller, idempotency);
        if (prior?.outcome === "conflict")
          throw refuse(
            "idempotency-conflict",
            "this delivery id came before with another body; the first delivery's job stands",
            { job_id: prior.jobId },
          );
        if (prior !== undefined) {
          const started = startedOf(prior);
          deps.audit?.({ ...context, decision: "accepted", status: 202, job_id: started.jobId });
          return jobAccepted(c, started.jobId, { respond: trigger.respond });
        }

        const data = deps.data;
        const delivered = { payload: payload.payload, headers: request.headers };
        const outcome = await evaluateTrigger(
          trigger,
          delivered,
          async (key) => (await (await openDataStore(data)).get(key))?.value,
        );
        if (outcome.kind === "skip") {
          deps.audit?.({
            ...context,
            decision: "skipped",
            status: 200,
            detail: skippedBy(trigger, delivered),
          });
          return c.json({ skipped: true, reason: outcome.reason }, 200, { "cache-control": "no-store" });
        }
        if (outcome.kind === "invalid") {
          // The sender is told the values that failed; the log names the inputs only.
          const fields = outcome.errors.map((e) => e.field);
          throw new Refusal(
            problem("invalid-input", `${outcome.errors[0]!.field}: ${outcome.errors[0]!.detail}`, {
              errors: outcome.errors,
            }),
            {},
            { detail: `${fields.join(", ")} failed ${fields.length === 1 ? "its" : "their"} checks` },
          );
        }
        const intent = intentOf(outcome.body, config, "invalid-input");
        return await execute(c, {
          startedAt,
          authStarted,
          context,
          caller: { keyId: trigger.caller, callerId: trigger.callerId, policy: trigger.policy },
          intent,
          respondAsync: true,
          idempotency,
          defaultCallback: trigger.callback,
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
  ): Promise<{ id: string; scheme: string; event?: string; key?: string }> {
    const scheme = trigger.verify.scheme;
    if (scheme === "rfc9421") {
      const auth = await authenticateOrFail(
        { method: request.method, url: publicUrl(request.url, config), headers: request.headers, body },
        deps.auth,
        new Date(now()),
      );
      if (!trigger.verify.keys.includes(auth.key.id))
        throw new Refusal(
          problem("forbidden", `key ${auth.key.id} may not call this trigger`),
          {},
          {
            key: auth.key.id,
            callerid: auth.key.callerId,
          },
        );
      // Callers name their delivery with Idempotency-Key; the replay store has refused a second use of
      // the signature already, so without one each signed request is a delivery of its own.
      const id =
        idempotencyKeyOf(request.headers) ??
        auth.nonce ??
        (await sha256Hex(new TextEncoder().encode(request.headers.get("signature") ?? "")));
      return { id, scheme, key: auth.key.id };
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
  app.onError((err) => problemResponse(internalFailure(err, deps.log).doc));
  return app;
}

interface JobsEnv {
  keyId: string;
}

function authorizeOrRefuse(policy: Policy, intent: PolicyIntent): void {
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

function parseIntent(body: Uint8Array, config: GatewayConfig): RpcIntent {
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

/**
 * Why a delivery was skipped, for the audit line: the first condition that did not hold, without the
 * value the delivery had there (the sender's answer has it; a log must not keep payload values).
 */
function skippedBy(trigger: Trigger, delivery: Delivery): string {
  const index = trigger.conditions.findIndex((c) => firstFailingCondition([c], delivery) !== undefined);
  const condition = trigger.conditions[index];
  return condition === undefined
    ? "a condition did not hold"
    : `when[${index}] did not hold: ${describeCondition(condition)}`;
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
    dialect: config.dialects[intent.cluster] ?? "v1",
  };
}
