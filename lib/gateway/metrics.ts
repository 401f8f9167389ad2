// What the gateway tells a metrics backend, as plain calls: lib/gateway runs in workerd too, so the
// metrics client (prom-client on Node) stays in the runtime entry that backs this port.
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import type { ProblemDocument } from "./problems.ts";
import { kindOf } from "./refusal.ts";

export interface RequestObservation {
  /** The route pattern that answered (`/v1/jobs/:id`), never the raw path: labels stay few. */
  route: string;
  method: string;
  status: number;
  /** The problem type's last segment for a problem answer, `none` otherwise. */
  reason: string;
  /** Until the response's headers: a stream's body is not waited for. */
  seconds: number;
}

export interface GatewayMetrics {
  request(observation: RequestObservation): void;
}

const PROBLEM = "application/problem+json";

/** Times every request and tells `metrics` how it was answered. */
export function measured(metrics: GatewayMetrics, now: () => number) {
  return createMiddleware(async (c, next) => {
    const started = now();
    await next();
    const res = c.res;
    const route = routePath(c);
    // A problem body is small and already whole; a body that is not one after all is counted, not thrown.
    const reason = res.headers.get("content-type")?.startsWith(PROBLEM)
      ? await res
          .clone()
          .json()
          .then(
            (doc) => kindOf(doc as ProblemDocument),
            () => "unknown",
          )
      : "none";
    metrics.request({
      route: route === "*" || route === "/*" ? "unmatched" : route,
      method: c.req.method,
      status: res.status,
      reason,
      seconds: (now() - started) / 1000,
    });
  });
}
