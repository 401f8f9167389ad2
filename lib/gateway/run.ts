// The run service: an authenticated, validated request (a /v1/rpc body, or a trigger's rendered one) is
// admitted (cluster, policy), then answered by one of three responders: sync (collected here), stream
// (each reply as it comes), or job (handed to the collectors; a sync request that may outlast its wait
// budget runs as a job too, so that it can still answer 202 when the budget is spent).
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ReplyDigest } from "../client/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { CallbackTarget, CreateOptions, JobDataAction, JobStore } from "../results/jobs/mod.ts";
import { jobAsRpcResult } from "../results/jobs/mod.ts";
import type { RpcResult } from "../results/mod.ts";
import {
  chooseFormat,
  publishRpc,
  type RpcHooks,
  type RpcPlan,
  resolveTargets,
  sendRpc,
  summaryEvent,
  type Targets,
} from "../results/mod.ts";
import type { AuditEvent, Policy, PolicyIntent } from "../security/http/mod.ts";
import type { RequestSigner } from "../security/mod.ts";
import type { DataStoreSource } from "./buckets.ts";
import type { GatewayConfig } from "./config.ts";
import { publicUrl, ServerTiming, streamResponse } from "./http.ts";
import { authorizeOrRefuse, collectivesOf, planOf, policyIntentOf } from "./intent.ts";
import { openJobStore, type StartedJob, settledWithin, startedOf, startJob, worstCaseMs } from "./job-run.ts";
import type { JobStoreSource } from "./job-store.ts";
import { HeldLocks, type LockRequest } from "./locks.ts";
import type { Audited } from "./middleware.ts";
import type { NatsSource } from "./nats.ts";
import { fieldError, invalidBody } from "./problems.ts";
import { Refusal, refuse } from "./refusal.ts";
import type { RpcIntent } from "./schema.ts";
import type { CallbackSealer } from "./seal.ts";
import { connectUpstream, type Upstream } from "./upstream.ts";

// Handed to the job, a trigger's locks outlive its deadline by this much, so that the collectors can
// release them first; a lock whose job was lost (every collector down) still frees itself then.
const LOCK_GRACE_MS = 30_000;

/** Who a request runs as: an HTTP key, or a trigger acting for its webhook sender. */
export interface RunCaller {
  /** Owns the jobs the request makes (and scopes its Idempotency-Keys). */
  keyId: string;
  callerId: string;
  policy: Policy;
}

export interface Run {
  authStarted: number;
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
export interface TriggerRun extends LockRequest {
  record: Record<string, string>;
  onComplete: JobDataAction[];
  respond?: TriggerResponse;
}

/** A trigger's own answer in place of the 202. */
export interface TriggerResponse {
  status: number;
  body: unknown;
}

export interface RunDeps {
  config: GatewayConfig;
  signer: RequestSigner;
  senderid: string;
  nats: NatsSource;
  now: () => number;
  sealer: CallbackSealer;
  audit?: ((event: AuditEvent) => void) | undefined;
  log?: Logger | undefined;
  jobs?: JobStoreSource | undefined;
  data?: DataStoreSource | undefined;
  replyDigest?: ReplyDigest | undefined;
}

/** A run past admission: where it goes and what its policy was asked. */
interface Admitted {
  run: Run;
  plan: RpcPlan;
  policyIntent: PolicyIntent;
}

/** What a run holds that an error must give back. */
interface Held {
  upstream?: Upstream;
  locks: HeldLocks;
}

export class RunService {
  readonly #deps: RunDeps;

  constructor(deps: RunDeps) {
    this.#deps = deps;
  }

  /** Runs a request to its answer; throws a Refusal, which the problem handler answers with. */
  async execute<E extends Audited>(c: Context<E>, run: Run): Promise<Response> {
    const { config, jobs } = this.#deps;
    const held: Held = { locks: HeldLocks.none };
    try {
      if (run.respondAsync && jobs === undefined)
        throw refuse("async-unavailable", "this gateway answers synchronously only; send mode sync");
      const admitted = this.#admit(c, run);
      const format = chooseFormat(c.req.raw.headers.get("accept"));
      const viaJob =
        jobs !== undefined &&
        (run.respondAsync || (format === "json" && worstCaseMs(admitted.plan) > config.syncBudgetMs));
      if (viaJob) return await this.#viaJob(c, admitted, await openJobStore(jobs), held);
      held.upstream = await this.#connect(c, run);
      const targets = await this.#targets(held.upstream, admitted);
      if (format === "json") return await this.#respondSync(c, held.upstream, admitted.plan, targets);
      return this.#respondStream(c, held.upstream, admitted.plan, targets, format);
    } catch (err) {
      held.upstream?.release();
      await held.locks.release();
      throw err;
    }
  }

  /** The cluster and collective, and the caller's policy on what the request would do. */
  #admit<E extends Audited>(c: Context<E>, run: Run): Admitted {
    const { intent } = run;
    const collectives = collectivesOf(intent, this.#deps.config);
    const collective = intent.collective ?? collectives[0];
    Object.assign(c.var.audit, {
      cluster: intent.cluster,
      collective,
      agent: intent.agent,
      action: intent.action,
    });
    if (!collectives.includes(collective))
      throw refuse("unknown-collective", `cluster ${intent.cluster} does not reach collective ${collective}`);
    const policyIntent = policyIntentOf(intent, collective);
    authorizeOrRefuse(run.caller.policy, policyIntent);
    if (
      intent.callback?.kind === "url" &&
      intent.callback.secret !== undefined &&
      !this.#deps.sealer.keepsSecrets
    )
      throw new Refusal(
        invalidBody([
          fieldError(
            ["callback", "secret"],
            "this gateway cannot keep callback secrets (no callback seal key); leave it out to be signed with the collectors' secret",
          ),
        ]),
      );
    return { run, plan: planOf(intent, collective, this.#deps.config), policyIntent };
  }

  #connect(c: Context, run: Run): Promise<Upstream> {
    const { nats, signer, senderid, now, config } = this.#deps;
    return connectUpstream(
      { nats, signer, senderid, now, connectTimeoutMs: config.connectTimeoutMs },
      c.req.raw,
      {
        callerId: run.caller.callerId,
        authStarted: run.authStarted,
      },
    );
  }

  /** What every collection of a request shares: its abort, its PING behind its first packet, the clock. */
  #hooks(upstream: Upstream): RpcHooks {
    const { now, replyDigest } = this.#deps;
    return {
      signal: upstream.abort.signal,
      onPublished: upstream.published,
      now,
      ...(replyDigest === undefined ? {} : { replyDigest }),
    };
  }

  /** Who the request goes to; the policy is asked again once the number of nodes is known. */
  async #targets(upstream: Upstream, { run, plan, policyIntent }: Admitted): Promise<Targets> {
    const targets = await resolveTargets(upstream.bus, upstream.client, plan, this.#hooks(upstream));
    if (targets.discoveryMs !== undefined) upstream.timing.add("discovery", targets.discoveryMs, "discovery");
    await upstream.refuseIfLost(targets.cancelled);
    if (targets.identities !== undefined)
      authorizeOrRefuse(run.caller.policy, { ...policyIntent, nodes: targets.identities.length });
    return targets;
  }

  /** The audit line of a request answered here, once its request id is known. */
  #accepted<E extends Audited>(c: Context<E>, targets: Targets) {
    return (requestId: string, expected: number | null) =>
      this.#deps.audit?.({
        ...c.var.audit,
        decision: "accepted",
        status: 200,
        request_id: requestId,
        targets: targets.identities?.length ?? expected,
      });
  }

  async #respondSync<E extends Audited>(
    c: Context<E>,
    upstream: Upstream,
    plan: RpcPlan,
    targets: Targets,
  ): Promise<Response> {
    const { now } = this.#deps;
    const rpcStarted = now();
    const result = await sendRpc(upstream.bus, upstream.client, plan, targets, {
      ...this.#hooks(upstream),
      startedAt: c.var.startedAt,
      onStart: (start) => this.#accepted(c, targets)(start.requestId, start.expected),
    }).finally(() => upstream.detach());
    await upstream.refuseIfLost(result.summary.done === "cancelled");
    upstream.release();
    return c.json(result, 200, {
      "server-timing": upstream.timing
        .add("rpc", now() - rpcStarted, "signing, publishing and collecting")
        .header(),
    });
  }

  #respondStream<E extends Audited>(
    c: Context<E>,
    upstream: Upstream,
    plan: RpcPlan,
    targets: Targets,
    format: "ndjson" | "sse",
  ): Response {
    const accepted = this.#accepted(c, targets);
    return streamResponse(format, upstream.abort, upstream.timing.header(), this.#deps.log, async (emit) => {
      try {
        const result = await sendRpc(upstream.bus, upstream.client, plan, targets, {
          ...this.#hooks(upstream),
          startedAt: c.var.startedAt,
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
        const lost = await upstream.lost(result.summary.done === "cancelled");
        emit(lost === undefined ? summaryEvent(result) : { ...lost.doc, type: "error" });
      } finally {
        upstream.detach();
        upstream.release();
      }
    });
  }

  /** The job responder: a repeat gets its job back; otherwise locks, targets, then the job is made. */
  async #viaJob<E extends Audited>(
    c: Context<E>,
    admitted: Admitted,
    store: JobStore,
    held: Held,
  ): Promise<Response> {
    const { run } = admitted;
    // A repeat finds its job before discovery, so that it costs the fleet nothing. The hooks route has
    // looked already, before it evaluated the trigger.
    if (run.idempotency !== undefined && run.trigger === undefined) {
      const prior = await store.findClaimed(run.caller.keyId, run.idempotency);
      if (prior !== undefined)
        return await this.#answerWithJob(c, run, store, startedOf(prior), new ServerTiming());
    }
    if (run.trigger !== undefined) held.locks = await HeldLocks.take(this.#deps.data, run.trigger);
    held.upstream = await this.#connect(c, run);
    const targets = await this.#targets(held.upstream, admitted);
    if (targets.cancelled) throw refuse("timeout", "the request ended before its targets were known");
    return await this.#respondWithJob(
      c,
      admitted,
      store,
      { upstream: held.upstream, locks: held.locks },
      targets,
    );
  }

  async #respondWithJob<E extends Audited>(
    c: Context<E>,
    { run, plan }: Admitted,
    store: JobStore,
    { upstream, locks }: Required<Held>,
    targets: Targets,
  ): Promise<Response> {
    const { config, now, sealer } = this.#deps;
    const startedAt = c.var.startedAt;
    // Sync: this request collects its own copy of the replies the collectors store, until the budget is
    // spent; then the job carries on without it.
    const budget = AbortSignal.timeout(Math.max(0, startedAt + config.syncBudgetMs - now()));
    let collected: RpcResult | undefined;
    await locks.handOver(plan.timeoutMs + LOCK_GRACE_MS);
    const started = await startJob({
      store,
      job: {
        caller: run.caller.keyId,
        cluster: run.intent.cluster,
        ...(run.trigger === undefined ? {} : { trigger: run.trigger.record }),
        ...effectsOf(locks, run.trigger?.onComplete ?? []),
      },
      plan,
      targets,
      callback: await sealer.seal(run.intent.callback ?? run.defaultCallback),
      idempotency: run.idempotency,
      callerid: upstream.client.callerid,
      send: async (route) => {
        if (run.respondAsync) return publishRpc(upstream.bus, upstream.client, plan, targets, route);
        collected = await sendRpc(upstream.bus, upstream.client, plan, targets, {
          ...this.#hooks(upstream),
          signal: AbortSignal.any([upstream.abort.signal, budget]),
          startedAt,
          route,
        });
      },
    }).finally(() => upstream.detach());
    // From here the job owns the locks: the collectors release them when it ends. Unless another request
    // with the same key made the job, and ours are left over.
    if (started.created) locks.disown();
    else await locks.release();
    if (collected !== undefined && !(collected.summary.done === "cancelled" && budget.aborted)) {
      await upstream.refuseIfLost(collected.summary.done === "cancelled");
      upstream.release();
      this.#deps.audit?.({
        ...c.var.audit,
        decision: "accepted",
        status: 200,
        job_id: started.jobId,
        request_id: collected.request_id,
        targets: targets.identities?.length ?? collected.summary.expected,
      });
      return c.json({ ...collected, job_id: started.jobId }, 200, {
        "server-timing": upstream.timing
          .add("rpc", now() - startedAt, "signing, publishing and collecting")
          .header(),
      });
    }
    upstream.release();
    return await this.#answerWithJob(c, run, store, started, upstream.timing, targets);
  }

  /** A sync request's result if its job settles within the budget, else 202 and where to read the job. */
  async #answerWithJob<E extends Audited>(
    c: Context<E>,
    run: Run,
    store: JobStore,
    started: StartedJob,
    timing: ServerTiming,
    targets?: Targets,
  ): Promise<Response> {
    const { config, now } = this.#deps;
    const startedAt = c.var.startedAt;
    const settled =
      !run.respondAsync && started.record !== undefined
        ? await settledWithin(
            store,
            started.record,
            startedAt + config.syncBudgetMs - now(),
            c.req.raw.signal,
          )
        : undefined;
    const requestId = started.requestId ?? started.record?.request_id;
    this.#deps.audit?.({
      ...c.var.audit,
      decision: "accepted",
      status: settled === undefined ? (run.trigger?.respond?.status ?? 202) : 200,
      job_id: started.jobId,
      ...(requestId === undefined ? {} : { request_id: requestId }),
      targets: targets?.identities?.length ?? started.record?.targets ?? null,
    });
    if (settled === undefined)
      return jobAccepted(c, config, started.jobId, {
        respond: run.trigger?.respond,
        headers: {
          "server-timing": timing.header(),
          ...(run.preferAsync ? { "preference-applied": "respond-async" } : {}),
        },
      });
    const results = [];
    for await (const result of store.results(settled)) results.push(result);
    const discovered = targets?.discovered ?? (settled.targets > 0 ? settled.targets : undefined);
    const result = jobAsRpcResult(settled, results, {
      ...(discovered === undefined ? {} : { discovered }),
      ...(targets?.discoveryMs === undefined ? {} : { discoveryMs: targets.discoveryMs }),
      elapsedMs: now() - startedAt,
    });
    return c.json(result, 200, { "server-timing": timing.header() });
  }
}

/** What the collectors do when the job ends: release its locks, and the trigger's data actions. */
function effectsOf(locks: HeldLocks, data: JobDataAction[]) {
  if (locks.locks.length === 0 && data.length === 0) return {};
  return { effects: { locks: locks.locks.map((lock) => ({ name: lock.name, token: lock.token })), data } };
}

/** 202 and where to read the job, or a trigger's own answer (with the job's Location all the same). */
export function jobAccepted(
  c: Context,
  config: GatewayConfig,
  jobId: string,
  options: { respond?: TriggerResponse | undefined; headers?: Record<string, string> },
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
