// The way every step of a request ends it with a problem document: throw a Refusal, answer with its doc.
import { PublishRefused } from "../../lib/results/rpc.ts";
import { UpstreamUnavailable } from "./nats.ts";
import { type ProblemDocument, type ProblemKind, problem } from "./problems.ts";

/** Thrown by steps of a request that end it with a problem document. */
export class Refusal extends Error {
  constructor(
    readonly doc: ProblemDocument,
    readonly headers: Record<string, string> = {},
  ) {
    super(doc.detail);
  }
}

export const refuse = (kind: ProblemKind, detail: string, extensions?: Record<string, unknown>) =>
  new Refusal(problem(kind, detail, extensions));

export function asRefusal(err: unknown): Refusal {
  if (err instanceof Refusal) return err;
  if (err instanceof UpstreamUnavailable)
    return new Refusal(problem("upstream-unavailable", err.message), { "retry-after": "1" });
  if (err instanceof PublishRefused)
    return new Refusal(problem("upstream-unavailable", err.message), { "retry-after": "1" });
  return new Refusal(problem("internal", `the gateway failed: ${errorText(err)}`));
}

export function kindOf(doc: ProblemDocument): string {
  return doc.type.slice(doc.type.lastIndexOf("/") + 1);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
