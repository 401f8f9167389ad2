import { encodeBase64 } from "../../protocol/mod.ts";
import { signStandardV1 } from "../../security/webhooks/mod.ts";

/*
 * Completion callbacks are Standard Webhooks messages (symmetric `v1`): the body signed with its
 * `webhook-id` and `webhook-timestamp` under a shared `whsec_<base64>` secret, so that receivers verify
 * them with any Standard Webhooks library (lib/security/webhooks is ours). The id is the job's, the same on
 * every attempt, for receivers to deduplicate on.
 */

export interface WebhookHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** A fresh secret: 32 random bytes (the scheme asks for at least 24). */
export function newWebhookSecret(): string {
  return `whsec_${encodeBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** The three headers of one delivery attempt made at `nowMs`. Throws on a secret that is not whsec_<base64>. */
export async function webhookHeaders(
  secret: string,
  id: string,
  body: string,
  nowMs: number,
): Promise<WebhookHeaders> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signStandardV1(secret, id, timestamp, body),
  };
}
