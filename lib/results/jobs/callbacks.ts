import {
  type CallbackAttempt,
  type CallbackOutcomeClass,
  type CallbackTarget,
  iso,
  type JobRecord,
  jobView,
} from "./model.ts";

/** The `type` of the completion event, in the Standard Webhooks payload layout (type, timestamp, data). */
export const CALLBACK_EVENT_TYPE = "choria_edge.job.finished";

export interface CallbackMessage {
  /** webhook-id: the same on every attempt, so a receiver can drop repeats. */
  id: string;
  body: string;
}

/**
 * The completion message of an ended job: its summary (as GET /v1/jobs/:id shows it, without the delivery
 * bookkeeping, so that every attempt carries the same bytes). URL and Lambda callbacks get the same body.
 */
export function callbackMessage(record: JobRecord): CallbackMessage {
  const { callback: _delivery, ...job } = jobView(record);
  return {
    id: `job_${record.id}`,
    body: JSON.stringify({ type: CALLBACK_EVENT_TYPE, timestamp: record.finished_at, data: job }),
  };
}

export interface CallbackOutcome {
  ok: boolean;
  /** What the job record keeps: a class of ours, never the receiver's words. */
  outcome: CallbackOutcomeClass;
  status?: number;
  /** Do not try again: the receiver said it is gone (HTTP 410), or the target cannot work as configured. */
  final?: boolean;
  /** Why, for the collector's log only: it is not stored in the job. */
  detail?: string;
}

export interface CallbackSender {
  send(target: CallbackTarget, message: CallbackMessage): Promise<CallbackOutcome>;
  close?(): void;
}

export interface RetryPolicy {
  /** Wait after the first failed attempt; doubled after each further failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Attempts in all, the first included; then the callback is `failed`. */
  maxAttempts: number;
  /** Share of each wait taken off at random (0 to 1), so retries of many jobs spread out. */
  jitter: number;
  /** How long an attempt keeps other collectors off the job's callback. */
  leaseMs: number;
}

/** 5 s, 10 s, 20 s, … up to an hour between attempts; twelve attempts span about three hours. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  baseDelayMs: 5000,
  maxDelayMs: 3_600_000,
  maxAttempts: 12,
  jitter: 0.2,
  leaseMs: 60_000,
};

export function retryDelay(
  failedAttempts: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const full = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failedAttempts - 1));
  return Math.round(full * (1 - policy.jitter * random()));
}

/** The record with an attempt leased to the caller, or undefined when no attempt is due or one is under way. */
export function claimAttempt(record: JobRecord, now: number, policy: RetryPolicy): JobRecord | undefined {
  const callback = record.callback;
  if (callback === null || callback.status !== "pending") return undefined;
  if (callback.next_attempt_at !== null && Date.parse(callback.next_attempt_at) > now) return undefined;
  if (callback.lease_until !== null && Date.parse(callback.lease_until) > now) return undefined;
  return { ...record, callback: { ...callback, lease_until: iso(now + policy.leaseMs) } };
}

/** The record after an attempt: delivered, or due again after the backoff, or failed for good. */
export function recordAttempt(
  record: JobRecord,
  outcome: CallbackOutcome,
  attempt: { startedAt: number; durationMs: number },
  policy: RetryPolicy,
  random: () => number = Math.random,
): JobRecord | undefined {
  const callback = record.callback;
  if (callback === null) return undefined;
  const entry: CallbackAttempt = {
    attempt: callback.attempts.length + 1,
    at: iso(attempt.startedAt),
    duration_ms: attempt.durationMs,
    ok: outcome.ok,
    outcome: outcome.outcome,
    ...(outcome.status === undefined ? {} : { status: outcome.status }),
  };
  const attempts = [...callback.attempts, entry];
  const finishedAt = attempt.startedAt + attempt.durationMs;
  // Another collector may have settled it meanwhile (after this one's lease ran out): only add the record.
  if (callback.status !== "pending") return { ...record, callback: { ...callback, attempts } };
  const base = { ...callback, attempts, lease_until: null };
  if (outcome.ok)
    return {
      ...record,
      callback: { ...base, status: "delivered", next_attempt_at: null, delivered_at: iso(finishedAt) },
    };
  if (outcome.final || attempts.length >= policy.maxAttempts)
    return { ...record, callback: { ...base, status: "failed", next_attempt_at: null } };
  return {
    ...record,
    callback: { ...base, next_attempt_at: iso(finishedAt + retryDelay(attempts.length, policy, random)) },
  };
}

export type UrlCallbackSender = (
  target: Extract<CallbackTarget, { kind: "url" }>,
  message: CallbackMessage,
) => Promise<CallbackOutcome>;

/** Sends each callback by its kind; a kind without a sender fails for good. */
export function callbackSender(senders: {
  url?: UrlCallbackSender;
  lambda?: {
    send(
      target: Extract<CallbackTarget, { kind: "lambda" }>,
      message: CallbackMessage,
    ): Promise<CallbackOutcome>;
    close(): void;
  };
}): CallbackSender {
  return {
    send(target, message) {
      if (target.kind === "url" && senders.url) return senders.url(target, message);
      if (target.kind === "lambda" && senders.lambda) return senders.lambda.send(target, message);
      return Promise.resolve({
        ok: false,
        outcome: "invalid_target",
        final: true,
        detail: `no sender for ${target.kind} callbacks`,
      });
    },
    close() {
      senders.lambda?.close();
    },
  };
}
