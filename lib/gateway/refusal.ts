// The way every step of a request ends it with a problem document: throw a Refusal, answer with its doc.
import { KvUnavailable } from "../kv/mod.ts";
import { errorText, type Logger } from "../log/mod.ts";
import { PublishRefused } from "../results/mod.ts";
import type { AuditEvent } from "../security/http/mod.ts";
import { UpstreamUnavailable } from "./nats.ts";
import { type ProblemDocument, type ProblemKind, problem } from "./problems.ts";

/** Thrown by steps of a request that end it with a problem document. */
export class Refusal extends Error {
  constructor(
    readonly doc: ProblemDocument,
    readonly headers: Record<string, string> = {},
    /**
     * What the audit line adds or says instead: the key a refusal can name (a stale or replayed signature
     * verified), or a `detail` without the values the caller's answer repeats.
     */
    readonly audit: Partial<AuditEvent> = {},
  ) {
    super(doc.detail);
  }
}

export const refuse = (kind: ProblemKind, detail: string, extensions?: Record<string, unknown>) =>
  new Refusal(problem(kind, detail, extensions));

/** A refusal worth retrying in a moment (a store or NATS that cannot answer just now): Retry-After 1. */
export const refuseForNow = (kind: ProblemKind, detail: string) =>
  new Refusal(problem(kind, detail), { "retry-after": "1" });

/**
 * What an error ends a request with. Anything that is not one of the gateway's own refusals is a failure
 * of the gateway: its text (an engine message, a path, an address) stays in the log, and the caller gets
 * the same generic sentence every time.
 */
export function asRefusal(err: unknown, log?: Logger): Refusal {
  if (err instanceof Refusal) return err;
  if (err instanceof UpstreamUnavailable || err instanceof PublishRefused)
    return refuseForNow("upstream-unavailable", err.message);
  // A bucket whose stream is electing a leader: answers again within seconds.
  if (err instanceof KvUnavailable)
    return refuseForNow("upstream-unavailable", "the store cannot answer just now; try again shortly");
  return internalFailure(err, log);
}

export const INTERNAL_DETAIL = "the gateway failed while handling the request; its log has the error";

/** The generic 500; the error, with its stack, is logged. */
export function internalFailure(err: unknown, log?: Logger): Refusal {
  log?.("error", "request failed", {
    error: errorText(err),
    ...(err instanceof Error && err.stack !== undefined ? { stack: err.stack } : {}),
  });
  return new Refusal(problem("internal", INTERNAL_DETAIL));
}

export function kindOf(doc: ProblemDocument): string {
  return doc.type.slice(doc.type.lastIndexOf("/") + 1);
}
