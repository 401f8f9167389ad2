// `POST /v1/hooks/:name`: a webhook delivery, verified the way its trigger's sender signs, evaluated
// (conditions, inputs, locks), then run as an async job through the run service.
import type { Context } from "hono";
import { depthDetail } from "../protocol/mod.ts";
import type { CreateOptions } from "../results/jobs/mod.ts";
import type { AuditEvent } from "../security/http/mod.ts";
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
import type { GatewayAuth } from "./deps.ts";
import { authenticateOrFail, idempotencyKeyOf, publicUrl, readBody, sha256Hex } from "./http.ts";
import { intentOf } from "./intent.ts";
import { openDataStore, openJobStore, startedOf } from "./job-run.ts";
import type { JobStoreSource } from "./job-store.ts";
import type { Audited } from "./middleware.ts";
import { fieldError, invalidBody, type ProblemKind, problem } from "./problems.ts";
import { Refusal, refuse } from "./refusal.ts";
import { jobAccepted, type RunService } from "./run.ts";
import type { GatewayTriggers } from "./triggers.ts";

export interface HookDeps {
  config: GatewayConfig;
  auth: GatewayAuth;
  now: () => number;
  audit?: ((event: AuditEvent) => void) | undefined;
  triggers: GatewayTriggers;
  /** Triggers run as jobs: a gateway with triggers has a jobs store. */
  jobs: JobStoreSource;
  data?: DataStoreSource | undefined;
  service: RunService;
}

/** A verified delivery: its id (for idempotency), how it was signed, and by which key. */
interface VerifiedDelivery {
  id: string;
  scheme: string;
  event?: string;
  key?: string;
}

export function hookHandler(deps: HookDeps) {
  return async (c: Context<Audited>): Promise<Response> => {
    const { config, now, triggers } = deps;
    const request = c.req.raw;
    const name = c.req.param("name") ?? "";
    const audit = Object.assign(c.var.audit, { trigger: name });
    const trigger = triggers.set.get(name);
    if (trigger === undefined) throw refuse("unknown-trigger", "no trigger by this name");
    const body = await readBody(request, config.maxHookBodyBytes);
    const authStarted = now();
    const delivery = await verifyDelivery(deps, trigger, request, body);
    Object.assign(audit, {
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

    // A delivery the sender retries (or an attacker replays) gets its first job back: no conditions, no
    // data reads, no locks, nothing sent.
    const idempotency = {
      idempotencyKey: `${trigger.name}:${delivery.id}`,
      fingerprint: await sha256Hex(body),
    };
    const repeat = await priorJob(c, deps, trigger, idempotency);
    if (repeat !== undefined) return repeat;

    const delivered = { payload: payload.payload, headers: request.headers };
    const outcome = await evaluateTrigger(
      trigger,
      delivered,
      async (key) => (await (await openDataStore(deps.data)).get(key))?.value,
    );
    if (outcome.kind === "skip") {
      deps.audit?.({ ...audit, decision: "skipped", status: 200, detail: skippedBy(trigger, delivered) });
      return c.json({ skipped: true, reason: outcome.reason }, 200, { "cache-control": "no-store" });
    }
    if (outcome.kind === "invalid") {
      // The sender is told the values that failed; the log names the inputs only.
      const [first] = outcome.errors;
      const fields = outcome.errors.map((e) => e.field);
      throw new Refusal(
        problem("invalid-input", `${first.field}: ${first.detail}`, { errors: outcome.errors }),
        {},
        { detail: `${fields.join(", ")} failed ${fields.length === 1 ? "its" : "their"} checks` },
      );
    }
    return await deps.service.execute(c, {
      authStarted,
      caller: { keyId: trigger.caller, callerId: trigger.callerId, policy: trigger.policy },
      intent: intentOf(outcome.body, config, "invalid-input"),
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
  };
}

/** The answer for a delivery seen before: its first job, or a conflict when its body differs. */
async function priorJob(
  c: Context<Audited>,
  deps: HookDeps,
  trigger: Trigger,
  idempotency: Required<CreateOptions>,
): Promise<Response | undefined> {
  const store = await openJobStore(deps.jobs);
  const prior = await store.findClaimed(trigger.caller, idempotency);
  if (prior?.outcome === "conflict")
    throw refuse(
      "idempotency-conflict",
      "this delivery id came before with another body; the first delivery's job stands",
      { job_id: prior.jobId },
    );
  if (prior === undefined) return undefined;
  const started = startedOf(prior);
  deps.audit?.({ ...c.var.audit, decision: "accepted", status: 202, job_id: started.jobId });
  return jobAccepted(c, deps.config, started.jobId, { respond: trigger.respond });
}

/** Who sent a webhook, checked the way its sender signs; a Refusal when the signature does not hold. */
async function verifyDelivery(
  deps: HookDeps,
  trigger: Trigger,
  request: Request,
  body: Uint8Array,
): Promise<VerifiedDelivery> {
  const scheme = trigger.verify.scheme;
  if (scheme === "rfc9421") {
    const auth = await authenticateOrFail(
      { method: request.method, url: publicUrl(request.url, deps.config), headers: request.headers, body },
      deps.auth,
      new Date(deps.now()),
    );
    if (!trigger.verify.keys.includes(auth.key.id))
      throw new Refusal(
        problem("forbidden", `key ${auth.key.id} may not call this trigger`),
        {},
        { key: auth.key.id, callerid: auth.key.callerId },
      );
    // Callers name their delivery with Idempotency-Key; the replay store has refused a second use of the
    // signature already, so without one each signed request is a delivery of its own.
    const id =
      idempotencyKeyOf(request.headers) ??
      auth.nonce ??
      (await sha256Hex(new TextEncoder().encode(request.headers.get("signature") ?? "")));
    return { id, scheme, key: auth.key.id };
  }
  const verdict = await verifyWebhook(
    scheme,
    deps.triggers.secrets.get(trigger.name) ?? {},
    { headers: request.headers, body },
    { now: new Date(deps.now()) },
  );
  if (!verdict.ok) throw new Refusal(problem(WEBHOOK_REFUSALS[verdict.reason], verdict.detail));
  return {
    id: verdict.deliveryId,
    scheme,
    ...(verdict.event === undefined ? {} : { event: verdict.event }),
  };
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
