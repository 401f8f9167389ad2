// The Hono middleware every signed route shares: what its audit line says so far, the caller's key
// (typed on `c.var` through Hono's Variables), and the one error handler that turns a thrown Refusal into
// its audit line and RFC 9457 problem response.
import type { Context, ErrorHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { Logger } from "../log/mod.ts";
import type { AuditEvent } from "../security/http/mod.ts";
import type { GatewayConfig } from "./config.ts";
import type { GatewayAuth } from "./deps.ts";
import { type Authenticated, authenticateOrFail, publicUrl, readBody } from "./http.ts";
import { problemResponse } from "./problems.ts";
import { asRefusal, kindOf, refuse } from "./refusal.ts";

export interface AuditVariables {
  /** When the request came in, for Server-Timing and the sync wait budget. */
  startedAt: number;
  /** What this request's audit line says so far; handlers add to it as they learn more. */
  audit: Partial<AuditEvent>;
}

export interface KeyVariables {
  /** The body as read within the route's limit: signatures cover it, so it is read before anything. */
  body: Uint8Array;
  /** When authentication began: Server-Timing's `auth` runs from here. */
  authStarted: number;
  /** The caller's verified key, and the nonce its signature used. */
  caller: Authenticated;
}

export type Audited = { Variables: AuditVariables };
export type Signed = { Variables: AuditVariables & KeyVariables };

export function audited(now: () => number) {
  return createMiddleware<Audited>(async (c, next) => {
    c.set("startedAt", now());
    c.set("audit", { method: c.req.method, path: new URL(c.req.url).pathname });
    await next();
  });
}

export const jsonOnly = createMiddleware(async (c, next) => {
  const mediaType = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (mediaType !== "application/json")
    throw refuse("unsupported-media-type", "send the request body as application/json");
  await next();
});

export interface Authentication {
  config: GatewayConfig;
  auth: GatewayAuth;
  now: () => number;
}

/** Reads the body within `maxBytes` and verifies the caller's key; the audit line names the key. */
export function signed({ config, auth, now }: Authentication, maxBytes: number) {
  return createMiddleware<Signed>(async (c, next) => {
    const request = c.req.raw;
    const body = await readBody(request, maxBytes);
    c.set("body", body);
    c.set("authStarted", now());
    const caller = await authenticateOrFail(
      { method: request.method, url: publicUrl(request.url, config), headers: request.headers, body },
      auth,
      new Date(now()),
    );
    c.set("caller", caller);
    Object.assign(c.var.audit, { key: caller.key.id, caller: caller.key.caller, scheme: caller.key.scheme });
    await next();
  });
}

/**
 * Every error a route throws: a Refusal answers with its problem document, anything else with the generic
 * internal problem (logged). A request that got as far as an audit context gets its audit line.
 */
export function problemHandler(
  audit: ((event: AuditEvent) => void) | undefined,
  log: Logger | undefined,
): ErrorHandler<{ Variables: Partial<AuditVariables> }> {
  return (err: unknown, c: Context<{ Variables: Partial<AuditVariables> }>) => {
    const refusal = asRefusal(err, log);
    const context = c.var.audit;
    if (context !== undefined) {
      const reason = kindOf(refusal.doc);
      audit?.({
        ...context,
        decision: reason === "client-aborted" ? "aborted" : "refused",
        reason,
        detail: refusal.doc.detail,
        status: refusal.doc.status,
        ...refusal.audit,
      });
    }
    return problemResponse(refusal.doc, refusal.headers);
  };
}
