// Requests that run as async jobs: creating the job, sending the request with the collectors' reply
// subject, waiting for its end within a budget; and the trigger data store and locks beside it.
import type { Lock } from "../data/mod.ts";
import { errorText } from "../log/mod.ts";
import { newRequestId } from "../protocol/mod.ts";
import type { CreateOptions, CreateOutcome, JobStore } from "../results/jobs/mod.ts";
import {
  type CallbackTarget,
  callbackTargetSchema,
  endJob,
  idempotencyKey,
  type JobRecord,
  jobReplySubject,
  type NewJob,
} from "../results/jobs/mod.ts";
import { PublishRefused, type RpcPlan, type Targets } from "../results/mod.ts";
import type { KeyRegistry } from "../security/http/mod.ts";
import type { DataStoreSource } from "./buckets.ts";
import type { JobStoreSource } from "./job-store.ts";
import { type Refusal, refuse, refuseForNow } from "./refusal.ts";
import type { RpcIntent } from "./schema.ts";

/** Each key's default completion callback, checked once; throws naming the key whose callback is wrong. */
export function defaultCallbacks(keys: KeyRegistry): Map<string, CallbackTarget> {
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

export interface JobStart {
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

export interface StartedJob {
  jobId: string;
  requestId?: string;
  record?: JobRecord;
  /** This request made the job (rather than finding it made for its Idempotency-Key). */
  created: boolean;
}

export function startedOf(outcome: CreateOutcome): StartedJob {
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
export function worstCaseMs(plan: RpcPlan): number {
  return (plan.addressing.kind === "discover" ? plan.addressing.timeoutMs : 0) + plan.timeoutMs;
}

export async function openDataStore(data: DataStoreSource | undefined) {
  if (data === undefined) throw new Error("this gateway has no data store");
  return data.store().catch((err: unknown) => {
    throw dataStoreUnavailable(err);
  });
}

export function dataStoreUnavailable(err: unknown): Refusal {
  return refuseForNow("data-store-unavailable", `cannot reach the data store: ${errorText(err)}`);
}

/** Releases what is still ours; a lock that ran out meanwhile is someone else's and is left alone. */
export async function releaseAll(locks: readonly Lock[]): Promise<void> {
  await Promise.all(locks.map((lock) => lock.release().catch(() => false)));
}

export async function openJobStore(jobs: JobStoreSource): Promise<JobStore> {
  return jobs.store().catch((err: unknown) => {
    throw refuseForNow("upstream-unavailable", `cannot reach the jobs store: ${errorText(err)}`);
  });
}

/** The job once settled, or undefined when `ms` pass (or the client goes) first. */
export async function settledWithin(
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
export async function startJob(start: JobStart): Promise<StartedJob> {
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
      ...(targets.discovery === undefined ? {} : { discovery: targets.discovery }),
      ...(start.callback === undefined ? {} : { callback: start.callback }),
    },
    start.idempotency ?? {},
  );
  const started = startedOf(outcome);
  if (outcome.outcome !== "created") return started;
  // Nobody to ask (discovery found no node, or `limit`/`expect` leaves none): the job is complete as made,
  // and answers at once instead of running to its deadline.
  if (targets.identities?.length === 0 || plan.expect === 0) {
    const ended = await endJob(store, outcome.job.id, "expected");
    return ended === undefined ? started : { ...started, record: ended };
  }
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
