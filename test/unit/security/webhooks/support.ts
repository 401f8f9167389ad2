import type {
  WebhookScheme,
  WebhookSecrets,
  WebhookVerdict,
  WebhookVerifyOptions,
} from "../../../../lib/security/webhooks/mod.ts";
import { verifyWebhook } from "../../../../lib/security/webhooks/mod.ts";

const utf8 = new TextEncoder();

/** Runs verifyWebhook on a request made of plain header records and a body as text or bytes. */
export function check(
  scheme: WebhookScheme,
  secrets: WebhookSecrets,
  headers: Record<string, string>,
  body: string | Uint8Array,
  nowSeconds: number,
  options: Omit<WebhookVerifyOptions, "now"> = {},
): Promise<WebhookVerdict> {
  return verifyWebhook(
    scheme,
    secrets,
    { headers: new Headers(headers), body: typeof body === "string" ? utf8.encode(body) : body },
    { ...options, now: new Date(nowSeconds * 1000) },
  );
}

export function without(headers: Record<string, string>, name: string): Record<string, string> {
  const { [name]: _dropped, ...rest } = headers;
  return rest;
}

/** The refusal reason, or "ok": reads well in expect(...).toBe(...). */
export function outcome(verdict: WebhookVerdict): string {
  return verdict.ok ? "ok" : verdict.reason;
}

/** Bytes that are not UTF-8 (a lone continuation byte inside JSON). */
export const NOT_UTF8 = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d]);
